// troupe's dashboard: plain JavaScript over the JSON API (api/*) and its event stream (api/events).
// No framework, nothing fetched from elsewhere. The token lives in the page's memory only.
"use strict";

(() => {
  const PAGE = 200; // rows per page, for actors and jobs alike
  const THROTTLE_MS = 300; // at most one refresh of a part per this long
  const POLL_MS = 2000; // mailbox depths and uptime change without events: look again this often
  const SECONDS = 300; // the chart's width in seconds

  const state = {
    running: null,
    ended: false,
    storeOnly: false,
    system: null,
    fetchedAt: 0,
    readOnly: false,
    hasJobs: true,
    actorOffset: 0,
    actorTotal: 0,
    under: "",
    collapsed: new Set(),
    lastActors: [],
    shown: {}, // what each part last rendered (as JSON): an unchanged answer is not rendered again
    jobOffset: 0,
    jobTotal: 0,
    jobStatus: "",
    selectedJob: null,
    dirty: new Set(),
    timer: null,
    busy: false,
    urgent: false,
    lastFlush: 0,
    rates: [],
    bucket: 0,
    source: null,
    intervals: [],
  };

  const $ = (id) => document.getElementById(id);

  // True when ``value`` differs from what ``part`` showed last (and remembers it). A storm of events
  // re-reads a part every few hundred milliseconds; rebuilding an unchanged table would only cost
  // the machine the system runs on.
  function changed(part, value) {
    const text = JSON.stringify(value);
    if (state.shown[part] === text) return false;
    state.shown[part] = text;
    return true;
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  }

  function errorText(result, what) {
    const said = result.body && result.body.error ? result.body.error : `HTTP ${result.status}`;
    return `Could not load ${what}: ${said}`;
  }

  function notice(text) {
    const node = $("notice");
    node.textContent = text || "";
    node.hidden = !text;
  }

  // -- the header ------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = s % 60;
    if (h) return `${h} h ${m} min ${rest} s`;
    if (m) return `${m} min ${rest} s`;
    return `${rest} s`;
  }

  function showUptime() {
    const sys = state.system;
    if (!sys) return;
    const extra = state.running ? (performance.now() - state.fetchedAt) / 1000 : 0;
    $("uptime").textContent = duration(Number(sys.uptime) + extra);
  }

  function setBadge(running) {
    const badge = $("badge");
    badge.textContent = running ? "running" : "stopped";
    badge.className = `badge ${running ? "badge-running" : "badge-stopped"}`;
  }

  async function refreshSystem() {
    const result = await getJSON("api/system");
    if (!result.ok) {
      notice(errorText(result, "the system"));
      return;
    }
    const sys = result.body;
    state.system = sys;
    state.fetchedAt = performance.now();
    state.readOnly = Boolean(sys.read_only);
    if (sys.has_jobs === false) state.hasJobs = false;
    if (sys.mode === "store" && !state.storeOnly) {
      // a job store served alone (troupe jobs serve): no actors, tasks or dead letters to show
      state.storeOnly = true;
      for (const id of ["actors", "tasks", "deadletters"]) $(id).hidden = true;
      for (const id of ["stat-actors", "stat-started", "stat-restarts", "stat-failures", "stat-dead_letters"]) {
        $(id).parentElement.hidden = true;
      }
    }
    $("system-name").textContent = sys.name;
    document.title = `${sys.name} — troupe dashboard`;
    for (const [key, value] of Object.entries(sys.stats || {})) {
      const node = $(`stat-${key}`);
      if (node) node.textContent = String(value);
    }
    if (state.running !== false) {
      state.running = Boolean(sys.running);
      setBadge(state.running);
      if (!state.running) stopped("The system has stopped; this page shows its last state.");
    }
    showUptime();
  }

  function stopped(why) {
    if (state.ended) return;
    state.ended = true;
    state.running = false;
    setBadge(false);
    notice(why);
    if (state.source) {
      state.source.close();
      state.source = null;
    }
    for (const id of state.intervals) clearInterval(id);
    state.intervals = [];
    $("job-cancel").disabled = true;
    drawChart();
  }

  // -- the actor tree ----------------------------------------------------------

  function depth(path) {
    return path.split("/").filter(Boolean).length;
  }

  function hiddenByCollapse(path) {
    for (const collapsed of state.collapsed) {
      if (path.startsWith(`${collapsed}/`)) return true;
    }
    return false;
  }

  function actorRow(actor, base) {
    const open = !state.collapsed.has(actor.path);
    const toggle = actor.children
      ? el("button", {
          type: "button",
          class: "toggle",
          "aria-expanded": open ? "true" : "false",
          "aria-label": `${open ? "Collapse" : "Expand"} ${actor.path}`,
          text: open ? "▾" : "▸",
          onclick: () => {
            if (state.collapsed.has(actor.path)) state.collapsed.delete(actor.path);
            else state.collapsed.add(actor.path);
            renderActors(state.lastActors);
          },
        })
      : el("span", { class: "toggle-space", "aria-hidden": "true" });
    const subtree = actor.children
      ? el("button", {
          type: "button",
          class: "link",
          "aria-label": `Show only the subtree under ${actor.path}`,
          text: "only this",
          onclick: () => {
            state.under = actor.path;
            state.actorOffset = 0;
            state.collapsed.clear();
            refreshNow("actors");
          },
        })
      : null;
    const indent = Math.max(0, depth(actor.path) - base);
    const name = el(
      "td",
      { class: "name", style: `padding-left: ${0.3 + indent * 1.2}em` },
      toggle,
      el("span", { title: actor.path, text: actor.name || actor.path }),
      subtree ? " " : null,
      subtree,
    );
    const capacity = actor.capacity === null || actor.capacity === undefined ? "" : ` / ${actor.capacity}`;
    return el(
      "tr",
      { "data-path": actor.path, "data-state": actor.state },
      name,
      el("td", { text: actor.class || "" }),
      el("td", {}, el("span", { class: `state state-${actor.state}`, text: actor.state })),
      el("td", { class: "num", text: `${actor.queued}${capacity}` }),
      el("td", { class: "num", text: String(actor.restarts) }),
      el("td", { class: "num", text: String(actor.children) }),
      el("td", { class: "failure", text: actor.failure || "" }),
    );
  }

  function renderActors(items) {
    state.lastActors = items;
    const base = items.reduce((low, a) => Math.min(low, depth(a.path)), Infinity);
    const rows = items.filter((a) => !hiddenByCollapse(a.path)).map((a) => actorRow(a, base));
    $("actors-body").replaceChildren(...rows);
  }

  async function refreshActors() {
    const query = new URLSearchParams({ offset: String(state.actorOffset), limit: String(PAGE) });
    if (state.under) query.set("under", state.under);
    const result = await getJSON(`api/actors?${query}`);
    if (!result.ok) {
      $("actors-range").textContent = errorText(result, "the actors");
      return;
    }
    const { total, items } = result.body;
    state.actorTotal = total;
    if (state.actorOffset >= total && total > 0) {
      state.actorOffset = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
      markDirty("actors");
      return;
    }
    const first = total ? state.actorOffset + 1 : 0;
    const last = state.actorOffset + items.length;
    const scope = state.under ? ` under ${state.under}` : "";
    $("actors-range").textContent = `Actors ${first}–${last} of ${total}${scope}`;
    $("actors-whole").hidden = !state.under;
    $("actors-prev").disabled = state.actorOffset === 0;
    $("actors-next").disabled = last >= total;
    if (changed("actors", items)) renderActors(items);
  }

  // -- jobs --------------------------------------------------------------------

  function when(stamp) {
    if (stamp === null || stamp === undefined) return "–";
    return new Date(stamp * 1000).toLocaleTimeString();
  }

  function took(job) {
    if (job.started === null || job.started === undefined) return "–";
    const end = job.finished === null || job.finished === undefined ? Date.now() / 1000 : job.finished;
    return `${(end - job.started).toFixed(2)} s`;
  }

  function percent(fraction) {
    return `${Math.round(100 * (Number(fraction) || 0))}%`;
  }

  function jobRow(job) {
    const selected = job.id === state.selectedJob;
    return el(
      "tr",
      { "data-job": job.id, "data-status": job.status, class: selected ? "selected" : null },
      el("td", {}, el("span", { title: job.id, text: job.name || job.id })),
      el("td", {}, el("span", { class: `status status-${job.status}`, text: job.status })),
      el(
        "td",
        {},
        el("progress", { max: "1", value: String(job.progress || 0), "aria-label": `progress of ${job.name}` }),
        ` ${percent(job.progress)}`,
      ),
      el("td", { text: when(job.created) }),
      el("td", { class: "num", text: took(job) }),
      el(
        "td",
        {},
        el("button", {
          type: "button",
          class: "details",
          "aria-label": `Details of job ${job.name} (${job.id})`,
          text: "Details",
          onclick: () => selectJob(job.id),
        }),
      ),
    );
  }

  async function refreshJobs() {
    if (!state.hasJobs) return;
    const query = new URLSearchParams({ offset: String(state.jobOffset), limit: String(PAGE) });
    if (state.jobStatus) query.set("status", state.jobStatus);
    const result = await getJSON(`api/jobs?${query}`);
    if (result.status === 404 && !state.jobStatus) {
      state.hasJobs = false;
      $("jobs-range").textContent = "This system keeps no job store.";
      $("jobs-body").replaceChildren();
      return;
    }
    if (!result.ok) {
      $("jobs-range").textContent = errorText(result, "the jobs");
      return;
    }
    const { total, items } = result.body;
    state.jobTotal = total;
    const first = total ? state.jobOffset + 1 : 0;
    const last = state.jobOffset + items.length;
    const which = state.jobStatus ? ` ${state.jobStatus}` : "";
    $("jobs-range").textContent = `Jobs${which} ${first}–${last} of ${total}`;
    $("jobs-prev").disabled = state.jobOffset === 0;
    $("jobs-next").disabled = last >= total;
    $("jobs-body").replaceChildren(...items.map(jobRow));
  }

  function field(name, value) {
    return el("div", {}, el("dt", { text: name }), el("dd", { text: value }));
  }

  function showJob(job) {
    $("job-detail").hidden = false;
    $("job-detail").dataset.job = job.id;
    $("job-detail").dataset.status = job.status;
    $("job-detail-title").textContent = `Job ${job.name}`;
    $("job-fields").replaceChildren(
      field("Id", job.id),
      field("Status", job.status),
      field("Created", when(job.created)),
      field("Started", when(job.started)),
      field("Finished", when(job.finished)),
      field("Took", took(job)),
    );
    $("job-progress").value = Number(job.progress) || 0;
    $("job-progress").textContent = percent(job.progress);
    $("job-progress-text").textContent = `${percent(job.progress)} ${job.progress_message || ""}`.trim();
    const outcome = $("job-outcome");
    const title = $("job-outcome-title");
    if (job.error) {
      title.textContent = "Error";
      outcome.textContent = job.error;
    } else if (job.status === "succeeded") {
      title.textContent = "Result";
      outcome.textContent = job.result_is_repr ? String(job.result) : JSON.stringify(job.result, null, 2);
    }
    const has = Boolean(job.error) || job.status === "succeeded";
    title.hidden = !has;
    outcome.hidden = !has;
    const live = job.status === "pending" || job.status === "running";
    const cancel = $("job-cancel");
    cancel.disabled = !live || state.readOnly || state.running === false;
    cancel.title = state.readOnly ? "This dashboard is read-only: it was started without a token." : "";
  }

  async function refreshJobDetail() {
    const id = state.selectedJob;
    if (!id) return;
    const result = await getJSON(`api/jobs/${encodeURIComponent(id)}`);
    if (id !== state.selectedJob) return;
    if (!result.ok) {
      $("job-message").textContent = errorText(result, `job ${id}`);
      return;
    }
    showJob(result.body);
  }

  function selectJob(id) {
    state.selectedJob = id;
    $("job-message").textContent = "";
    for (const row of $("jobs-body").querySelectorAll("tr")) {
      row.classList.toggle("selected", row.dataset.job === id);
    }
    refreshNow("detail");
  }

  async function cancelJob() {
    const id = state.selectedJob;
    if (!id) return;
    const message = $("job-message");
    const headers = { Accept: "application/json" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    message.textContent = "Cancelling…";
    let result;
    try {
      const response = await fetch(`api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST", headers });
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      result = { ok: response.ok, status: response.status, body };
    } catch (error) {
      message.textContent = `Not cancelled: the dashboard did not answer (${error}). Is the system still running?`;
      return;
    }
    const said = result.body && result.body.error ? ` (${result.body.error})` : "";
    if (result.status === 202) {
      message.textContent =
        "Cancel requested, but the job has not stopped after 5 seconds: its task does not answer cancellation (a shielded scope or a blocking call). It ends when that code returns.";
    } else if (result.ok) {
      message.textContent = "Cancelled: the job is being stopped.";
    } else if (result.status === 401) {
      message.textContent = token
        ? `Not cancelled: the server refused this token (401). Enter the token the dashboard printed when it started.${said}`
        : `Not cancelled: cancelling needs the dashboard's token (401). Enter the token the dashboard printed when it started in the Token field, then press Cancel again.${said}`;
    } else if (result.status === 409) {
      message.textContent = `Not cancelled: the job has already finished.${said}`;
    } else if (result.status === 404) {
      message.textContent = `Not cancelled: no such job.${said}`;
    } else {
      message.textContent = `Not cancelled: HTTP ${result.status}${said}`;
    }
    refreshNow("detail", "jobs");
  }

  // -- tasks and dead letters --------------------------------------------------

  async function refreshTasks() {
    const result = await getJSON("api/tasks");
    if (!result.ok) return;
    const { counts, items } = result.body;
    if (!changed("tasks", result.body)) return;
    $("task-counts").replaceChildren(
      ...Object.entries(counts || {}).map(([name, n]) =>
        el("div", {}, el("dt", { text: name }), el("dd", { "data-count": name, text: String(n) })),
      ),
    );
    $("tasks-body").replaceChildren(
      ...(items || []).map((task) =>
        el(
          "tr",
          {},
          el("td", { text: task.name }),
          el("td", {}, el("span", { class: `status status-${task.state}`, text: task.state })),
          el("td", { title: task.job_id || "", text: task.job_id ? task.job_id.slice(0, 8) : "–" }),
          el("td", { text: task.has_channel ? "yes" : "no" }),
        ),
      ),
    );
  }

  async function refreshDeadLetters() {
    const result = await getJSON("api/deadletters");
    if (!result.ok) return;
    const { count, latest } = result.body;
    if (!changed("deadletters", result.body)) return;
    const shown = (latest || []).slice().reverse();
    $("deadletters-count").textContent = count
      ? `${count} dead letter${count === 1 ? "" : "s"}; the latest ${shown.length}, newest first:`
      : "No dead letters.";
    $("deadletters-body").replaceChildren(
      ...shown.map((letter) =>
        el(
          "tr",
          {},
          el("td", { text: String(letter.message) }),
          el("td", { text: String(letter.recipient) }),
          el("td", { text: String(letter.reason) }),
        ),
      ),
    );
  }

  // -- refreshing, throttled ---------------------------------------------------

  const REFRESH = {
    system: refreshSystem,
    actors: refreshActors,
    jobs: refreshJobs,
    detail: refreshJobDetail,
    tasks: refreshTasks,
    deadletters: refreshDeadLetters,
  };

  const STORE_PARTS = new Set(["system", "jobs", "detail"]);

  function markDirty(...parts) {
    for (const part of parts) if (!state.storeOnly || STORE_PARTS.has(part)) state.dirty.add(part);
    schedule();
  }

  // what the user asked for (a page, a filter, a job's details) is fetched at once, not throttled
  function refreshNow(...parts) {
    for (const part of parts) if (!state.storeOnly || STORE_PARTS.has(part)) state.dirty.add(part);
    state.urgent = true;
    if (state.busy) return; // the running flush goes on with these as soon as it ends
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    flush();
  }

  function schedule() {
    if (state.timer !== null || state.busy || state.dirty.size === 0) return;
    const wait = state.urgent ? 0 : Math.max(0, THROTTLE_MS - (performance.now() - state.lastFlush));
    state.timer = setTimeout(flush, wait);
  }

  async function flush() {
    state.timer = null;
    state.busy = true;
    state.urgent = false;
    const parts = [...state.dirty];
    state.dirty.clear();
    try {
      await Promise.all(parts.map((part) => REFRESH[part]()));
    } catch (error) {
      if (state.running !== false) await checkAlive(error);
    } finally {
      state.busy = false;
      state.lastFlush = performance.now();
      if (state.running !== false) schedule();
    }
  }

  // -- the event stream ---------------------------------------------------------

  function partsFor(topic) {
    if (topic.startsWith("troupe.job.")) return ["jobs", "detail"];
    if (topic.startsWith("troupe.task.") || topic.startsWith("troupe.manager.")) return ["tasks"];
    if (topic.startsWith("troupe.service.")) return ["tasks"];
    if (topic === "troupe.dead_letter") return ["deadletters", "system"];
    if (/^troupe\.(lifecycle|spawned|started|failed|restarted|stopped)$/.test(topic)) return ["actors", "system"];
    return [];
  }

  function lives(data) {
    if (typeof data !== "object" || data === null) return 0;
    return (Number(data.spawned) || 0) + (Number(data.stopped) || 0);
  }

  function onBatch(event) {
    let items;
    try {
      items = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!Array.isArray(items)) return;
    const parts = new Set();
    for (const item of items) {
      const topic = String(item.topic || "");
      // the actors' lives come summed up: a spawn and a stop count as one event each
      state.bucket += topic === "troupe.lifecycle" ? lives(item.data) : 1;
      for (const part of partsFor(topic)) parts.add(part);
    }
    if (parts.size) markDirty(...parts);
  }

  function onLagged(event) {
    let dropped = 0;
    try {
      const data = JSON.parse(event.data);
      dropped = Number(typeof data === "object" && data !== null ? data.events : data) || 0;
    } catch {
      dropped = 0;
    }
    state.bucket += dropped;
    markDirty("system", "actors", "jobs", "detail", "tasks", "deadletters");
  }

  async function checkAlive(why) {
    try {
      const result = await getJSON("api/system");
      if (result.ok && result.body.running) {
        setTimeout(() => {
          if (state.running !== false && state.source === null) connect();
        }, 1000);
        return;
      }
    } catch {
      // the server is gone with its system
    }
    stopped(`The system has stopped (${why}); this page shows its last state.`);
  }

  function connect() {
    const source = new EventSource("api/events");
    state.source = source;
    source.addEventListener("batch", onBatch);
    source.addEventListener("lagged", onLagged);
    source.addEventListener("stopped", () => {
      stopped("The system has stopped; this page shows its last state.");
      markDirty("system", "actors", "jobs", "detail", "tasks", "deadletters");
    });
    source.addEventListener("error", () => {
      if (state.source !== source) return;
      source.close();
      state.source = null;
      if (state.running !== false) checkAlive("its event stream closed");
    });
  }

  // -- the chart -----------------------------------------------------------------

  function tick() {
    state.rates.push(state.bucket);
    state.bucket = 0;
    if (state.rates.length > SECONDS) state.rates.splice(0, state.rates.length - SECONDS);
    drawChart();
    showUptime();
  }

  function drawChart() {
    const canvas = $("chart");
    const ctx = canvas.getContext && canvas.getContext("2d");
    if (!ctx) return;
    const rates = state.rates;
    const w = canvas.width;
    const h = canvas.height;
    const styles = getComputedStyle(canvas);
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = styles.getPropertyValue("--grid").trim() || "#ccc";
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
    ctx.fillStyle = styles.getPropertyValue("--bar").trim() || "#3a6ea5";
    const span = Math.min(SECONDS, Math.max(60, rates.length)); // a minute at first, then up to five
    const shownRates = rates.slice(-span);
    const step = w / span;
    const offset = span - shownRates.length;
    const top = Math.max(1, ...shownRates);
    shownRates.forEach((n, i) => {
      const bar = ((h - 14) * n) / top;
      ctx.fillRect((offset + i) * step, h - bar, Math.max(1, step - 0.5), bar);
    });
    ctx.fillStyle = styles.getPropertyValue("--ink").trim() || "#222";
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText(`${top}/s`, 2, 1);
    ctx.textAlign = "right";
    ctx.fillText("now", w - 2, 1);
    ctx.textAlign = "left";
    const recent = rates.slice(-10);
    const average = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : 0;
    const peak = rates.length ? Math.max(...rates) : 0;
    const text = `${average.toFixed(1)} events/s over the last 10 s; peak ${peak}/s in the last ${Math.ceil(rates.length / 60)} min.`;
    $("rate").textContent = text;
    canvas.setAttribute("aria-label", `Events per second over the last minutes: ${text}`);
  }

  // -- wiring ------------------------------------------------------------------

  function start() {
    $("token-form").addEventListener("submit", (event) => event.preventDefault());
    $("actors-prev").addEventListener("click", () => {
      state.actorOffset = Math.max(0, state.actorOffset - PAGE);
      refreshNow("actors");
    });
    $("actors-next").addEventListener("click", () => {
      state.actorOffset += PAGE;
      refreshNow("actors");
    });
    $("actors-whole").addEventListener("click", () => {
      state.under = "";
      state.actorOffset = 0;
      refreshNow("actors");
    });
    $("jobs-prev").addEventListener("click", () => {
      state.jobOffset = Math.max(0, state.jobOffset - PAGE);
      refreshNow("jobs");
    });
    $("jobs-next").addEventListener("click", () => {
      state.jobOffset += PAGE;
      refreshNow("jobs");
    });
    $("job-status").addEventListener("change", (event) => {
      state.jobStatus = event.target.value;
      state.jobOffset = 0;
      refreshNow("jobs");
    });
    $("job-cancel").addEventListener("click", cancelJob);
    $("job-close").addEventListener("click", () => {
      state.selectedJob = null;
      $("job-detail").hidden = true;
      for (const row of $("jobs-body").querySelectorAll("tr.selected")) row.classList.remove("selected");
    });
    drawChart();
    connect();
    // the system first: a job store served alone has no actors, tasks or dead letters to ask for
    refreshSystem()
      .catch(() => notice("The dashboard did not answer: is the system still running?"))
      .finally(() => markDirty("actors", "jobs", "tasks", "deadletters"));
    state.intervals.push(setInterval(tick, 1000));
    state.intervals.push(
      setInterval(() => {
        if (state.running !== false) markDirty("system", "actors", "tasks");
      }, POLL_MS),
    );
  }

  document.addEventListener("DOMContentLoaded", start);
})();
