#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs: the repository's valid and
# invalid samples of each kind (samples/), and the few hand-written seeds
# of fuzz/seeds/<target>/. Files over 64 KiB are left out. Idempotent; the
# corpora are not committed (fuzz/.gitignore), the seeds' sources are.
#
#   fuzz/seed.sh            # all targets
#   fuzz/seed.sh sales      # one target
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
cd "$repo"
shopt -s nullglob

max_bytes=65536

# seed TARGET FILE...: copies each FILE as corpus/TARGET/seed-<path with / as _>.
seed() {
    local target=$1 f name
    shift
    mkdir -p "$fuzz/corpus/$target"
    for f in "$@"; do
        [[ -f $f ]] || continue
        (($(stat -c %s "$f") <= max_bytes)) || continue
        name=seed-${f//\//_}
        cp "$f" "$fuzz/corpus/$target/$name"
    done
}

# The envelope target reads a manifest, a NUL byte, then the payload.
seed_envelope() {
    local dir=$fuzz/corpus/envelope stx payload name
    mkdir -p "$dir"
    for stx in samples/exchange/valid/*.stx samples/exchange/invalid/*/*.stx; do
        name=seed-${stx//\//_}
        payload=$(ls "${stx%.stx}".{xml,csv} 2>/dev/null | head -n 1 || true)
        if [[ -n $payload ]]; then
            { cat "$stx"; printf '\0'; cat "$payload"; } >"$dir/$name"
        else
            cp "$stx" "$dir/$name"
        fi
    done
    seed envelope fuzz/seeds/envelope/*
}

# The file-name target reads one name: every name of the exchange samples.
seed_file_name() {
    local dir=$fuzz/corpus/file_name f n=0
    mkdir -p "$dir"
    for f in samples/exchange/*/* samples/exchange/invalid/*/*; do
        [[ -f $f ]] || continue
        n=$((n + 1))
        printf '%s' "$(basename "$f")" >"$dir/seed-name-$n"
    done
    seed file_name fuzz/seeds/file_name/*
}

targets=("$@")
((${#targets[@]})) || targets=(seatplan catalogue contingent sales envelope file_name mapping_csv config differential)
for t in "${targets[@]}"; do
    case $t in
    seatplan) seed seatplan samples/opera/seatplan.xml samples/exchange/valid/*.SEATPLAN.*.xml samples/invalid/seatplan-*.xml ;;
    catalogue) seed catalogue samples/opera/catalogue.xml samples/tourism/reference.xml samples/exchange/valid/*.CATALOGUE.*.xml samples/invalid/catalogue-*.xml samples/payloads/catalogue*.xml ;;
    contingent) seed contingent samples/payloads/contingent*.csv samples/exchange/valid/*.CONTINGENT.*.csv samples/invalid/contingent-*.csv ;;
    sales) seed sales samples/payloads/sales*.csv samples/exchange/valid/*.SALES.*.csv samples/exchange/invalid/*/*.csv samples/invalid/sales-*.csv ;;
    envelope) seed_envelope ;;
    file_name) seed_file_name ;;
    mapping_csv) seed mapping_csv samples/tourism/mapping.csv samples/mapping/invalid/*.csv ;;
    config) seed config config/stxd.toml config/examples/*.toml fuzz/seeds/config/* ;;
    # Steps, not a file format: libFuzzer grows its corpus from nothing.
    differential) mkdir -p "$fuzz/corpus/differential" ;;
    *)
        echo "seed.sh: unknown target $t" >&2
        exit 2
        ;;
    esac
done
