//! Peak memory of verifying and parsing SALES files of growing size.
//!
//! `cargo bench --bench stream_memory [-- SIZES_MIB…]` (default 16 128 1024):
//! for each size, generates a sealed sales file in a temporary folder, then
//! runs claim → verify → parse over it in a fresh child process and reports
//! that process's peak resident memory (VmHWM) and throughput. Streaming
//! holds when the peak does not grow with the size; the last column is the
//! ratio to the smallest file's peak, measured side by side in one run.
//! Speed is reported, never asserted: machines are shared and noisy.

use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use stxd::format::envelope::{Expect, Secret};
use stxd::format::sales::{Line, Operation, OrderRef, Place, Ticket, Writer};
use stxd::format::{Kind, Limits};
use stxd::ident::{Code, TechId};
use stxd::inbound;
use stxd::money::Currency;
use stxd::outbound::{Header, publish};

const CHILD: &str = "--measure";

fn secret() -> Secret {
    Secret::new(b"benchmark secret, not for production".to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some(CHILD) {
        measure(Path::new(&args[1]));
        return;
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![16, 128, 1024]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let dir = tempfile::tempdir_in(env_tmp()).expect("temp dir");
    println!("size_mib  lines       write_s  verify+parse_s  MiB/s   peak_rss_kib  ratio");
    let mut first_peak = None;
    for (i, mib) in sizes.iter().enumerate() {
        let seq = i as u64 + 1;
        let t = Instant::now();
        let (manifest, lines) = generate(dir.path(), seq, mib << 20);
        let write_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([CHILD, &dir.path().join(&manifest).display().to_string()])
            .output()
            .expect("child");
        let read_s = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut fields = text.split_whitespace();
        let records: u64 = fields.next().and_then(|f| f.parse().ok()).expect("records");
        let peak: u64 = fields.next().and_then(|f| f.parse().ok()).expect("peak");
        assert_eq!(records, lines);
        let ratio = peak as f64 / *first_peak.get_or_insert(peak) as f64;
        println!(
            "{mib:>8}  {lines:>10}  {write_s:>7.1}  {read_s:>14.1}  {:>5.0}  {peak:>12}  {ratio:>5.2}",
            *mib as f64 / read_s
        );
        for name in [manifest.clone(), manifest.replace(".stx", ".csv")] {
            let _ = std::fs::remove_file(dir.path().join(name));
        }
    }
}

/// Large files go where there is room: $STXD_BENCH_DIR, else target/.
fn env_tmp() -> std::path::PathBuf {
    std::env::var_os("STXD_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Writes a sealed sales file of about `bytes` bytes; returns the manifest's
/// name and the number of lines.
fn generate(dir: &Path, sequence: u64, bytes: u64) -> (String, u64) {
    let header = Header {
        format_version: 1,
        kind: Kind::Sales,
        link: "opera-tourism".into(),
        sender: "TOURISM".into(),
        recipient: "OPERA".into(),
        login: "TOURISM_OPE@TOURISM".into(),
        sequence,
        created: time::OffsetDateTime::now_utc(),
    };
    let id = |v| TechId::new(v).expect("id");
    let mut lines = 0;
    let manifest = publish(dir, &header, &secret(), |out| {
        let written = Rc::new(Cell::new(0u64));
        let mut w = Writer::new(CountingWriter {
            inner: out,
            bytes: written.clone(),
        })?;
        let start = time::macros::datetime!(2026-12-01 10:00:00 UTC);
        let mut line = 0u64;
        loop {
            line += 1;
            let seat = line % 20 + 1;
            w.write(&Line::Ticket(Box::new(Ticket {
                rate_version: None,
                logical_seat_category: None,
                line,
                operation: Operation::Sale,
                time: start + time::Duration::seconds((line % 86_400) as i64),
                order: OrderRef::new(&format!("T-{line:09}")).expect("order"),
                refund_of: None,
                performance: id(1701),
                place: Place::Seat {
                    block: id(3301),
                    row: Code::new("A").expect("row"),
                    seat: Code::new(&seat.to_string()).expect("seat"),
                },
                seat_category: id(2001),
                tariff_type: id(1201),
                audience_subcategory: id(1301),
                amount: 8500,
                currency: Currency::new("EUR").expect("currency"),
                vat_code: id(1101),
            })))?;
            if line.is_multiple_of(1024) && written.get() >= bytes {
                break;
            }
        }
        let (_, n) = w.finish()?;
        lines = n;
        Ok(n)
    })
    .expect("publish");
    (manifest.manifest_name(), lines)
}

struct CountingWriter<W> {
    inner: W,
    bytes: Rc<Cell<u64>>,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Child: claim, verify and parse one file; print records and peak RSS (KiB).
fn measure(manifest: &Path) {
    let limits = Limits::default();
    let expect = Expect {
        link: "opera-tourism",
        sender: "TOURISM",
        recipient: "OPERA",
        login: "TOURISM_OPE@TOURISM",
        kind: Some(Kind::Sales),
    };
    let claimed = inbound::claim::claim(manifest, &limits).expect("claim");
    let verified = inbound::verify::verify(claimed, &secret(), &expect, &limits).expect("verify");
    let mut n = 0u64;
    for record in inbound::parse::parse(verified, &limits) {
        record.expect("record");
        n += 1;
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .expect("VmHWM");
    println!("{n} {peak}");
}
