"""gunicorn settings, read from the working directory (/src/backend) by default.

Dev (compose) adds --reload; the deployable image runs the same file. Tune with env vars:
WEB_CONCURRENCY (workers, default 2), GUNICORN_THREADS (default 4).
"""

import os

wsgi_app = "expungeservice.wsgi:app"
bind = "0.0.0.0:5000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# SIGTERM: stop accepting, let in-flight requests finish for up to graceful_timeout seconds.
# Keep it below the container stop timeout (compose: stop_grace_period).
graceful_timeout = 20
timeout = 60
accesslog = "-"
errorlog = "-"
