"""Prometheus metrics of this process, served at /metrics."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("zariz_http_requests_total", "HTTP requests served", ["method", "status"])
HTTP_LATENCY = Histogram(
    "zariz_http_request_seconds",
    "HTTP request latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ORDER_EVENTS = Counter("zariz_order_events_total", "Order events recorded", ["type"])
SSE_CONNECTIONS = Gauge("zariz_sse_connections", "Open SSE streams in this process")
SSE_EVENTS_SENT = Counter("zariz_sse_events_sent_total", "Events written to SSE streams")
PUSH_SENT = Counter("zariz_push_sent_total", "Pushes accepted by APNs")
PUSH_FAILED = Counter("zariz_push_failed_total", "Push attempts that failed and will be retried")
PUSH_DEAD = Counter("zariz_push_dead_total", "Pushes given up after the last attempt")
PUSH_DISABLED_DEVICES = Counter(
    "zariz_push_devices_disabled_total", "Devices disabled after APNs said the token is gone"
)
PUSH_QUEUE_DEPTH = Gauge("zariz_push_queue_depth", "Push jobs waiting to be sent")
