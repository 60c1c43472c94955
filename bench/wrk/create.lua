-- wrk script: every request creates a customer (one event) on Switchboard.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SWITCHBOARD_BENCH_KEY")
wrk.body = "name=Jenny+Rosen&email=jenny%40example.com"
