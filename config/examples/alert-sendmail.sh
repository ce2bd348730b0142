#!/bin/sh
# Mails an stxd alert through the host's MTA (sendmail -t).
#
# stxd runs it for each notification of an [[alert]] table, with the
# notification (one JSON object) on standard input and STXD_ALERT_EVENT,
# STXD_ALERT_STATE and STXD_ALERT_KEY in the environment:
#
#   [[alert]]
#   name = "ops-mail"
#   command = ["/usr/local/lib/stxd/alert-sendmail.sh", "ops@example.org"]
#   events = ["file-refused", "file-parked", "sequence-gap", "job-failed",
#             "sftp-down", "resolved"]
#   rate_limit_seconds = 3600
#
# Arguments: one or more recipients. STXD_ALERT_FROM sets the sender
# (default stxd@<host>), STXD_SENDMAIL the program (default
# /usr/sbin/sendmail). A non-zero exit (sendmail refusing the mail) makes
# stxd retry, then log the failure.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 RECIPIENT..." >&2
    exit 2
fi
sendmail=${STXD_SENDMAIL:-/usr/sbin/sendmail}
json=$(cat)

# One string field of the notification, unescaped enough for a mail (no
# line breaks: it may go into a header).
field() {
    printf '%s\n' "$json" |
        sed -E -n 's/.*"'"$1"'":"(([^"\\]|\\.)*)".*/\1/p' |
        sed -e 's/\\[nrt]/ /g' -e 's/\\"/"/g' -e 's/\\\\/\\/g' |
        tr -d '\r\n' | cut -c1-200
}

event=${STXD_ALERT_EVENT:-$(field event)}
state=${STXD_ALERT_STATE:-$(field state)}
key=${STXD_ALERT_KEY:-$(field key)}
host=$(field host)
summary=$(field summary)
fix=$(field fix)
code=$(field code)
link=$(field link)
file=$(field file)
since=$(field since)
at=$(field at)
from=${STXD_ALERT_FROM:-stxd@${host:-localhost}}
to=$(printf '%s, ' "$@" | sed 's/, $//')

if [ "$state" = resolved ]; then
    subject="[stxd] resolved: $event $key"
else
    subject="[stxd] $event: ${summary:-$key}"
fi

{
    printf 'From: %s\n' "$from"
    printf 'To: %s\n' "$to"
    printf 'Subject: %s\n' "$(printf '%s' "$subject" | tr -d '\r\n' | cut -c1-200)"
    printf 'Content-Type: text/plain; charset=UTF-8\n'
    printf 'Auto-Submitted: auto-generated\n'
    printf '\n'
    printf 'stxd on %s: %s is %s.\n\n' "${host:-?}" "$event" "$state"
    printf 'Summary: %s\n' "$summary"
    [ -n "$fix" ] && printf 'Fix:     %s\n' "$fix"
    [ -n "$code" ] && printf 'Code:    %s\n' "$code"
    [ -n "$link" ] && printf 'Link:    %s\n' "$link"
    [ -n "$file" ] && printf 'File:    %s\n' "$file"
    [ -n "$since" ] && printf 'Since:   %s\n' "$since"
    printf 'Key:     %s\n' "$key"
    printf 'At:      %s\n' "$at"
    printf '\nThe notification as stxd sent it:\n%s\n' "$json"
} | "$sendmail" -t -oi
