/*
 * promise_eval.h -- how good the promise is, on the Olist CSV layout: learn
 * from one folder's deliveries (in time order, as they complete) and
 * promise the other folder's orders when they are placed, their own
 * deliveries teaching too once they complete; the same figures for the
 * shop's own order_estimated_delivery_date on the same orders.
 */
#ifndef CS_TRACKING_PROMISE_EVAL_H
#define CS_TRACKING_PROMISE_EVAL_H

#include <jansson.h>

#include "promise.h"

typedef struct cs_promise_eval_opts {
    const char *train_dir;    /* Olist CSVs to learn from */
    const char *test_dir;     /* Olist CSVs to promise; NULL with split_at */
    cs_ms_t split_at;         /* > 0: one folder, orders placed from here on are the test */
    cs_promise_opts_t model;  /* quantiles, half-life (tz is set to São Paulo) */
} cs_promise_eval_opts_t;

/* {"train_deliveries", "test_orders", "model": {...}, "ours": {point_mae_days,
 * median_window_end_days, late_rate, window_hit_rate}, "shop": {point_mae_days,
 * median_window_end_days, late_rate, on_time_rate} (the shop's estimate is
 * a date: on time = 1 - late, no window to hit),
 * "window_end_ratio" (null when the shop's median window end is 0 days),
 * "bound": [{grouping, q_high, median_window_end_days,
 * late_rate, window_end_ratio, point_mae_days}, ...]} -- the bound is an
 * oracle told the test orders' own times (promise_eval.c); *out owned by
 * the caller. */
cs_rc cs_promise_eval_olist(const cs_promise_eval_opts_t *o, json_t **out, cs_err_t *err);

#endif /* CS_TRACKING_PROMISE_EVAL_H */
