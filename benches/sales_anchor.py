#!/usr/bin/env python3
"""The scripted anchor of the sales benchmark (benches/suite): what an ops
team would write instead of stxd to book a SALES payload.

    sales_anchor.py MANAGER_STORE PAYLOAD_CSV OUT_DB

Reads the manager's seats, zones, performances, prices and the link's
allotments once into dicts (read-only), then books each line of the payload
into OUT_DB: a SALE must name a known performance, a seat or zone of it
allotted to the link and unsold (or a zone place left), and the price of the
performance's rate table; a REFUND must name a booked sale. Rejected lines
are counted, not kept. One transaction, like stxd.
"""
import csv
import sqlite3
import sys

LINK = "opera-tourism"


def main(store, payload, out):
    src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    seats = {(b, r, n): (i, c) for i, b, r, n, c in src.execute(
        "SELECT s.id, r.block, r.code, s.number, s.seat_category"
        " FROM seat s JOIN seat_row r ON r.id = s.row")}
    zones = dict(src.execute("SELECT id, seat_category FROM zone"))
    perfs = dict(src.execute("SELECT id, configuration FROM performance"))
    prices = {}
    for perf, cat, tariff, aud, amount, cur in src.execute(
            "SELECT pp.performance, p.seat_category, p.tariff_type,"
            " p.audience_subcategory, p.amount, rt.currency"
            " FROM product_performance pp JOIN product pr ON pr.id = pp.product"
            " JOIN rate_table rt ON rt.id = pr.rate_table"
            " JOIN price p ON p.rate_table = pr.rate_table"):
        prices[(perf, cat, tariff, aud)] = (amount, cur)
    allotted = set(src.execute(
        "SELECT performance, seat FROM allotment_seat WHERE link = ?", (LINK,)))
    zone_left = {(p, z): q + h for p, z, q, h in src.execute(
        "SELECT performance, zone, quantity, held FROM allotment_zone WHERE link = ?",
        (LINK,))}
    src.close()

    db = sqlite3.connect(out)
    db.execute("CREATE TABLE ticket (line INTEGER, operation TEXT, ord TEXT,"
               " performance INTEGER, seat INTEGER, zone INTEGER, amount INTEGER,"
               " currency TEXT, sold_at TEXT, PRIMARY KEY (line, operation))")
    sold, booked, rejected = set(), {}, 0
    rows = []
    with open(payload, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter=";"):
            if r["operation"] == "ACK":
                continue
            line, perf = int(r["line"]), int(r["performance"])
            amount = int(r["amount"])
            if r["operation"] == "REFUND":
                sale = booked.pop(int(r["refund_of"]), None)
                if sale is None or sale[2] != amount:
                    rejected += 1
                    continue
                if sale[1] is not None:
                    sold.discard((sale[0], sale[1]))
                rows.append((line, "REFUND", r["order"], perf, sale[1], None,
                             -amount, r["currency"], r["time"]))
                continue
            cat = int(r["seat_category"])
            if r["zone"]:
                zone, seat = int(r["zone"]), None
                key = (perf, zone)
                ok = zones.get(zone) == cat and zone_left.get(key, 0) > 0
                if ok:
                    zone_left[key] -= 1
            else:
                zone = None
                found = seats.get((int(r["block"]), r["row"], r["seat"]))
                seat = found and found[0]
                ok = (found is not None and found[1] == cat
                      and (perf, seat) in allotted and (perf, seat) not in sold)
            price = prices.get((perf, cat, int(r["tariff_type"]),
                                int(r["audience_subcategory"])))
            if not ok or perf not in perfs or price != (amount, r["currency"]):
                rejected += 1
                continue
            if seat is not None:
                sold.add((perf, seat))
            booked[line] = (perf, seat, amount)
            rows.append((line, "SALE", r["order"], perf, seat, zone, amount,
                         r["currency"], r["time"]))
            if len(rows) >= 10000:
                db.executemany("INSERT INTO ticket VALUES (?,?,?,?,?,?,?,?,?)", rows)
                rows.clear()
    db.executemany("INSERT INTO ticket VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    print(f"rejected {rejected}")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
