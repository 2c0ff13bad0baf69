#!/usr/bin/env python3
"""A second bound for the delivery promise: a regression fitted on the test
orders themselves.

promise-eval's own bound (the leave-one-out oracle) asks what a window per
destination state or per lane could do with hindsight. This asks the same of
every feature an order of the Olist sample carries at purchase, and of some it
does not: a log-linear model of the days from purchase to delivery, fitted by
ridge least squares on the *test* orders (in-sample, so it has seen the very
deliveries it is scored on), with

  basic: same state or not, log freight, log price, log weight, the shop's own
         estimate (log days), item count, and one indicator per destination
         state, origin state, lane, purchase weekday and purchase week (the
         week: hindsight of the test months' own slow and fast spells);
  all:   the above plus one indicator per seller, customer city, postcode
         region (2 digits) and product category.

Indicators are kept for values with at least 5 test orders. Each order's window
ends at exp(fit + r), r being the smallest residual quantile whose late rate is
no higher than the shop's; its point is exp(fit + median residual). An honest
model, which has not seen the test deliveries, cannot expect to do better than
this fit does on them.

    bench/promise_bound.py DIR [SPLIT ...]   one JSON line per split and feature set

Standard library only; DIR is an Olist-layout folder (../shared/data/olist-sample).
"""
import collections
import csv
import datetime as dt
import json
import math
import os
import statistics
import sys


def read(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def when(s):
    return dt.datetime.strptime(s[:19], "%Y-%m-%d %H:%M:%S") if s else None


def number(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return 0.0


def orders(folder):
    """The delivered orders, with what is known of them at purchase."""
    customers = {r["customer_id"]: r for r in read(folder, "olist_customers_dataset.csv")}
    sellers = {r["seller_id"]: r for r in read(folder, "olist_sellers_dataset.csv")}
    products = {r["product_id"]: r for r in read(folder, "olist_products_dataset.csv")}
    items = collections.defaultdict(list)
    for r in read(folder, "olist_order_items_dataset.csv"):
        items[r["order_id"]].append(r)
    out = []
    for r in read(folder, "olist_orders_dataset.csv"):
        placed = when(r["order_purchase_timestamp"])
        came = when(r["order_delivered_customer_date"])
        est = when(r["order_estimated_delivery_date"])
        its = items.get(r["order_id"])
        cust = customers.get(r["customer_id"])
        if r["order_status"] != "delivered" or not (placed and came and est and its and cust):
            continue
        first = its[0]
        product = products.get(first["product_id"], {})
        out.append({
            "placed": placed,
            "days": (came - placed).total_seconds() / 86400,
            "day": (came.date() - placed.date()).days,
            "est": (est.date() - placed.date()).days,
            "to": cust["customer_state"],
            "from": sellers.get(first["seller_id"], {}).get("seller_state", ""),
            "city": cust["customer_city"],
            "zip2": cust["customer_zip_code_prefix"][:2],
            "seller": first["seller_id"],
            "category": product.get("product_category_name", ""),
            "freight": sum(number(i["freight_value"]) for i in its),
            "price": sum(number(i["price"]) for i in its),
            "weight": sum(number(products.get(i["product_id"], {}).get("product_weight_g"))
                          for i in its),
            "n": len(its),
        })
    return out


def solve(a, b):
    """a x = b by Gauss-Jordan with partial pivoting (a is small and dense)."""
    n = len(a)
    m = [row[:] + [v] for row, v in zip(a, b)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        piv = m[i][i]
        for r in range(n):
            if r != i and m[r][i]:
                f = m[r][i] / piv
                row, top = m[r], m[i]
                for c in range(i, n + 1):
                    row[c] -= f * top[c]
    return [m[i][n] / m[i][i] for i in range(n)]


KEYS = {
    "basic": [("to", lambda o: o["to"]), ("from", lambda o: o["from"]),
              ("lane", lambda o: (o["from"], o["to"])),
              ("weekday", lambda o: o["placed"].weekday()),
              ("week", lambda o: o["placed"].isocalendar()[:2])],
    "all": [("seller", lambda o: o["seller"]), ("city", lambda o: o["city"]),
            ("zip2", lambda o: o["zip2"]), ("category", lambda o: o["category"])],
}


def fit(test, keyset, ridge=0.5):
    keys = KEYS["basic"] + (KEYS["all"] if keyset == "all" else [])
    dummies = []
    for _, key in keys:
        for value, count in collections.Counter(key(o) for o in test).items():
            if count >= 5:
                dummies.append((key, value))

    def features(o):
        return [1.0, float(o["from"] == o["to"]), math.log1p(o["freight"]),
                math.log1p(o["price"]), math.log1p(o["weight"]), math.log1p(o["est"]),
                float(o["n"])] + [float(key(o) == value) for key, value in dummies]

    x = [features(o) for o in test]
    y = [math.log(o["day"] + 0.5) for o in test]
    k = len(x[0])
    a = [[0.0] * k for _ in range(k)]
    for row in x:
        nz = [i for i in range(k) if row[i]]
        for i in nz:
            ai, xi = a[i], row[i]
            for j in nz:
                ai[j] += xi * row[j]
    for i in range(1, k):
        a[i][i] += ridge
    b = [sum(row[i] * v for row, v in zip(x, y)) for i in range(k)]
    beta = solve(a, b)
    return k, [sum(bi * xi for bi, xi in zip(beta, row)) for row in x], y


def bound(all_orders, split, keyset):
    test = [o for o in all_orders if o["placed"] >= split]
    shop_late = sum(o["day"] > o["est"] for o in test) / len(test)
    shop_end = statistics.median(o["est"] for o in test)
    k, pred, y = fit(test, keyset)
    res = sorted(v - p for v, p in zip(y, pred))
    for i, r in enumerate(res):
        ends = [math.floor(math.exp(p + r)) for p in pred]
        late = sum(o["day"] > e for o, e in zip(test, ends)) / len(test)
        if late <= shop_late:
            break
    mid = res[len(res) // 2]
    mae = statistics.mean(abs(o["days"] - math.exp(p + mid)) for o, p in zip(test, pred))
    end = statistics.median(ends)
    return {"split": split.date().isoformat(), "features": keyset, "columns": k,
            "test_orders": len(test), "residual_quantile": round(i / len(res), 3),
            "median_window_end_days": end, "late_rate": round(late, 4),
            "shop_median_window_end_days": shop_end, "shop_late_rate": round(shop_late, 4),
            "window_end_ratio": round(end / shop_end, 3), "point_mae_days": round(mae, 2)}


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    all_orders = orders(argv[1])
    for s in argv[2:] or ["2017-12-01", "2018-01-22", "2018-03-01"]:
        split = dt.datetime.strptime(s, "%Y-%m-%d")
        for keyset in ("basic", "all"):
            print(json.dumps(bound(all_orders, split, keyset)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
