// The console's only script (the CSP allows no inline code): live board, CSRF header, forms.
(function () {
  "use strict";

  function csrf() {
    return document.body.dataset.csrf || "";
  }

  // htmx requests carry the CSRF token as a header; plain forms carry it as a hidden field.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    // The server makes a double submit harmless (one Idempotency-Key per form); this only
    // spares the second request.
    if (form.hasAttribute("data-once")) {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
    }
  });

  function setLive(state, text) {
    var status = document.getElementById("live-status");
    document.body.dataset.live = state;
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  var seen = null;
  function orderIds() {
    var ids = new Set();
    document.querySelectorAll("#board [data-order-id]").forEach(function (el) {
      ids.add(el.dataset.orderId + ":" + el.dataset.status);
    });
    return ids;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "board") {
      seen = orderIds();
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (seen === null) return;
    // Rows that are new, or moved to another column, stand out for a moment.
    document.querySelectorAll("#board [data-order-id]").forEach(function (el) {
      if (!seen.has(el.dataset.orderId + ":" + el.dataset.status)) el.classList.add("fresh");
    });
    seen = null;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || "0") + 1);
  });

  function startLive() {
    // Pages with a live part (the board, the couriers' loads) re-read it on every event.
    if (!document.querySelector("[data-live]") || !window.EventSource) return;
    var timer = null;
    function refresh() {
      if (timer) return;
      // One re-read for a burst of events.
      timer = window.setTimeout(function () {
        timer = null;
        window.htmx.trigger(document.body, "zariz:refresh");
      }, 150);
    }
    // The browser resumes with Last-Event-ID after a drop; the board re-reads itself on
    // every event and on every reconnect, so nothing missed while away stays missing.
    var source = new EventSource("/console/events");
    var opened = false;
    source.onopen = function () {
      setLive("open", "Live");
      if (opened) refresh();
      opened = true;
    };
    source.onmessage = refresh;
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the session ended): the reload lands on the sign-in page.
        setLive("closed", "Signed out");
        window.location.reload();
      } else {
        setLive("reconnecting", "Reconnecting…");
      }
    };
  }

  document.addEventListener("DOMContentLoaded", startLive);
})();
