-- Default cut points of the temporal split: the 80% and 90% quantiles of event time.
SELECT quantile_disc(ts, 0.8) AS valid_start, quantile_disc(ts, 0.9) AS test_start FROM kc;
