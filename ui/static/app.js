// agentgate's admin UI script. Every page works without it; it adds:
// live queue updates (server-sent events), copy buttons and busy states on
// buttons while a form is sent. No inline script is used: the CSP forbids it.
"use strict";

// Buttons say what they are doing and cannot be pressed twice.
document.addEventListener("submit", (ev) => {
  const button = ev.submitter;
  if (!button || !button.dataset.busy) return;
  // Disable after the browser has taken the form's values.
  setTimeout(() => {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = button.dataset.busy;
  }, 0);
});

// "Today" ends at midnight here, not at the gateway's: forms that offer it
// say the browser's offset from UTC, in minutes.
document.addEventListener("submit", (ev) => {
  const tz = ev.target.querySelector('input[name="tz_offset"]');
  if (tz) tz.value = String(-new Date().getTimezoneOffset());
});

// Remaining times count down.
const remaining = document.querySelectorAll("[data-remaining]");
if (remaining.length) {
  const started = Date.now();
  const words = (s) => s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min`
    : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  const tick = () => {
    for (const el of remaining) {
      const left = Math.max(0, Number(el.dataset.remaining) - Math.floor((Date.now() - started) / 1000));
      el.textContent = left > 0 ? `in ${words(left)}` : "ended";
    }
  };
  tick();
  setInterval(tick, 1000);
}

// Copy buttons copy the value or text of the element they name.
document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = "value" in source ? source.value : source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard access needs a secure context; fall back to selecting.
    if (source.select) {
      source.select();
      document.execCommand("copy");
    }
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Every signed-in page shows the pause switch as it is, flipped anywhere.
const banner = document.getElementById("pause-banner");
const lists = document.getElementById("queue-lists");
if (banner && !lists && "EventSource" in window) {
  new EventSource("/ui/events").addEventListener("pause", (ev) => {
    banner.hidden = !JSON.parse(ev.data).paused;
  });
}

// The queue page follows the queue as it moves.
if (lists && "EventSource" in window) {
  const live = document.getElementById("live");
  const say = (text) => { live.hidden = false; live.textContent = text; };
  let pending = null;

  async function refresh() {
    const resp = await fetch(lists.dataset.liveSrc, { credentials: "same-origin" });
    if (resp.status === 401) { location.reload(); return; }
    if (!resp.ok) { say("Could not refresh the queue; reload the page."); return; }
    const tpl = document.createElement("template");
    tpl.innerHTML = await resp.text();
    merge(document.getElementById("pending-list"), tpl.content.getElementById("pending-list"));
    document.getElementById("recent-list").replaceWith(tpl.content.getElementById("recent-list"));
    const count = Number(document.getElementById("pending-list").dataset.count);
    document.getElementById("pending-count").textContent = String(count);
    const nav = document.querySelector("[data-nav-count]");
    if (nav) nav.textContent = String(count);
    document.title = (count > 0 ? "(" + count + ") " : "") + "Queue · agentgate";
  }

  // Entries already shown keep their element (and whatever the admin typed
  // into them); new ones are added and decided ones leave.
  function merge(current, fresh) {
    const kept = new Map([...current.children].map((el) => [el.id, el]));
    const next = [...fresh.children].map((el) => {
      const old = el.id && kept.get(el.id);
      if (old) return old;
      el.classList.add("arrived");
      return el;
    });
    current.replaceChildren(...next);
    current.dataset.count = fresh.dataset.count;
  }

  const source = new EventSource("/ui/events");
  // Whatever moved between rendering the page and (re)connecting the stream
  // was not announced on it: catch up once on every open.
  source.addEventListener("open", () => { say("Live"); refresh(); });
  source.addEventListener("pause", (ev) => {
    if (banner) banner.hidden = !JSON.parse(ev.data).paused;
  });
  source.addEventListener("queue", () => {
    // Several events in a burst need one refresh.
    clearTimeout(pending);
    pending = setTimeout(refresh, 100);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped. Reload the page.");
    } else {
      say("Reconnecting…");
    }
  });
}

// Times are sent in UTC (RFC 3339); show them in the reader's own time zone.
function localTimes(root) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.title = el.getAttribute("datetime");
      el.textContent = fmt.format(when);
    }
  }
}
localTimes(document);
new MutationObserver((changes) => {
  for (const c of changes) for (const n of c.addedNodes) if (n.querySelectorAll) localTimes(n);
}).observe(document.body, { childList: true, subtree: true });
