/* journeylens dashboard: queries the API with a read key; every value from the data goes in via textContent. */
(function () {
  "use strict";
  var KEY = "journeylens.key";
  var $ = function (id) { return document.getElementById(id); };
  var ATTRIBUTION_MODELS = ["first_touch", "last_touch", "linear", "position_based", "markov"];
  var generation = 0;

  function key() { return sessionStorage.getItem(KEY); }

  function setStatus(text) { $("status").textContent = text; }

  function ApiFailure(status, body) {
    this.status = status;
    this.message = (body && body.message) || ("HTTP " + status);
  }

  function api(method, path, body, asText) {
    var init = { method: method, headers: { "Authorization": "Bearer " + key() } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      if (!res.ok) {
        return res.json().catch(function () { return null; }).then(function (b) {
          if (res.status === 401) { showLogin("The key was refused: " + ((b && b.message) || "unauthorized")); }
          throw new ApiFailure(res.status, b);
        });
      }
      return asText ? res.text() : res.json();
    });
  }

  // -- login ------------------------------------------------------------------------------------------

  function showLogin(message) {
    sessionStorage.removeItem(KEY);
    $("main").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    var err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    setStatus("");
  }

  function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    setStatus("loading…");
    api("GET", "/v1/dimensions").then(function (dims) {
      fillFilters(dims);
      refresh();
    }).catch(function (e) {
      if (e.status === 403) { showLogin(e.message); } else if (e.status !== 401) { setStatus(e.message); }
    });
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var value = $("key").value.trim();
    if (!value) { return; }
    sessionStorage.setItem(KEY, value);
    $("key").value = "";
    start();
  });
  $("logout").addEventListener("click", function () { showLogin(""); });

  // -- filters ----------------------------------------------------------------------------------------

  function options(select, values, selected) {
    values.forEach(function (v) {
      var o = document.createElement("option");
      o.value = v;
      o.textContent = v;
      if (v === selected) { o.selected = true; }
      select.appendChild(o);
    });
  }

  function fillFilters(dims) {
    var f = $("filters").elements;
    [f.persona, f.journey_type, f.model, f.segment_column].forEach(function (s) {
      while (s.options.length > 1) { s.remove(1); }
    });
    options(f.persona, dims.personas || []);
    options(f.journey_type, dims.journey_types || []);
    options(f.model, dims.phase_models || []);
    options(f.segment_column, dims.persons_columns || []);
    if (dims.start) { f.start.placeholder = dims.start.slice(0, 10); }
    if (dims.end) { f.end.placeholder = dims.end.slice(0, 10); }
  }

  function chosen() {
    var f = $("filters").elements;
    return {
      start: f.start.value || null,
      end: f.end.value || null,
      persona: f.persona.value || null,
      journeyType: f.journey_type.value || null,
      model: f.model.value || null,
      segmentColumn: f.segment_column.value || null,
      segmentValue: f.segment_value.value
    };
  }

  function filters(c, withSelection) {
    var out = {};
    if (c.start) { out.start = c.start; }
    if (c.end) { out.end = c.end; }
    if (withSelection && c.persona) { out.personas = [c.persona]; }
    if (withSelection && c.journeyType) { out.journey_types = [c.journeyType]; }
    if (c.segmentColumn && c.segmentValue !== "") {
      out.persons = {};
      out.persons[c.segmentColumn] = c.segmentValue;
    }
    return out;
  }

  function describe(c) {
    var parts = [];
    if (c.start || c.end) { parts.push("journeys starting " + (c.start || "…") + " to " + (c.end || "…")); }
    if (c.persona) { parts.push("persona " + c.persona); }
    if (c.journeyType) { parts.push("journey type " + c.journeyType); }
    if (c.model) { parts.push("phase model " + c.model); }
    if (c.segmentColumn && c.segmentValue !== "") { parts.push(c.segmentColumn + " = " + c.segmentValue); }
    return "Showing " + (parts.join("; ") || "all journeys") + ".";
  }

  $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); refresh(); });
  $("reset").addEventListener("click", function () { $("filters").reset(); refresh(); });
  $("paths-level").addEventListener("change", function () { paths(chosen(), generation); });
  $("report").addEventListener("click", function (ev) {
    ev.preventDefault();
    var c = chosen();
    setStatus("building the report…");
    api("GET", "/v1/report" + (c.model ? "?model=" + encodeURIComponent(c.model) : ""), undefined, true)
      .then(function (html) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(new Blob([html], { type: "text/html" }));
        a.download = "journeylens-report.html";
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
        setStatus("report downloaded");
      })
      .catch(function (e) { setStatus(e.message); });
  });

  // -- rendering --------------------------------------------------------------------------------------

  var PERCENT = /(share|conversion_from|rate|normalised)/;

  function cell(column, value) {
    var td = document.createElement("td");
    if (typeof value === "number") {
      td.className = "num";
      if (PERCENT.test(column) && Math.abs(value) <= 1) {
        td.textContent = (value * 100).toFixed(1) + "%";
      } else if (Number.isInteger(value)) {
        td.textContent = value.toLocaleString("en");
      } else {
        td.textContent = value.toFixed(2);
      }
    } else if (value === null || value === undefined) {
      td.textContent = "";
    } else {
      td.textContent = String(value);
    }
    return td;
  }

  function table(host, rows, columns, limit) {
    host.replaceChildren();
    if (!rows.length) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No data for this selection.";
      host.appendChild(p);
      return;
    }
    var details = document.createElement("details");
    details.className = "data";
    details.open = true;
    var summary = document.createElement("summary");
    summary.textContent = "data (" + Math.min(rows.length, limit) + " of " + rows.length + " rows)";
    details.appendChild(summary);
    var t = document.createElement("table");
    t.className = "data";
    var head = t.createTHead().insertRow();
    columns.forEach(function (c) {
      var th = document.createElement("th");
      th.textContent = c.replace(/_/g, " ");
      head.appendChild(th);
    });
    var body = t.createTBody();
    rows.slice(0, limit).forEach(function (r) {
      var tr = body.insertRow();
      columns.forEach(function (c) { tr.appendChild(cell(c, r[c])); });
    });
    details.appendChild(t);
    host.appendChild(details);
  }

  function figure(id, fig) {
    var div = $(id);
    if (!window.Plotly) { div.textContent = "Plotly did not load."; return; }
    if (!fig) {
      window.Plotly.purge(div);
      div.replaceChildren();
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No figure for this selection.";
      div.appendChild(p);
      return;
    }
    var layout = Object.assign({}, fig.layout || {}, { autosize: true });
    delete layout.width;
    if (!div.querySelector(".plot-container")) { div.replaceChildren(); }
    window.Plotly.react(div, fig.data || [], layout, { responsive: true, displaylogo: false });
  }

  function failed(panel, e) {
    var host = $(panel).querySelector(".table");
    host.replaceChildren();
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = e.message || String(e);
    host.appendChild(p);
  }

  function panel(name, gen, request, draw) {
    var section = $("panel-" + name);
    section.classList.add("loading");
    return request().then(function (answer) {
      if (gen !== generation) { return; }
      draw(answer, section.querySelector(".table"));
    }).catch(function (e) {
      if (gen !== generation) { return; }
      failed("panel-" + name, e);
      if (name !== "map") { figure("fig-" + name, null); }
    }).then(function () { section.classList.remove("loading"); });
  }

  // -- panels -----------------------------------------------------------------------------------------

  function journeyMap(c, gen) {
    var spec = { journey_type: c.journeyType || "purchase", filters: filters(c, false) };
    if (c.persona) { spec.persona = c.persona; }
    if (c.model) { spec.model = c.model; }
    return panel("map", gen, function () {
      return api("POST", "/v1/analyses/journey_map/html", spec, true);
    }, function (html) {
      $("map-frame").srcdoc = html;
    });
  }

  function funnel(c, gen) {
    var spec = { filters: filters(c, true) };
    if (c.model) { spec.model = c.model; }
    if (c.journeyType) { spec.journey_types = [c.journeyType]; }
    return panel("funnel", gen, function () { return api("POST", "/v1/analyses/phase_funnel", spec); },
      function (a, host) {
        figure("fig-funnel", a.figure);
        table(host, a.rows, ["label", "reached", "conversion_from_previous", "conversion_from_first", "dropped",
          "median_days_in_phase"], 20);
      });
  }

  function touchpoints(c, gen) {
    var spec = { journey_type: c.journeyType || "purchase", filters: filters(c, true) };
    return panel("touchpoints", gen, function () { return api("POST", "/v1/analyses/touchpoints", spec); },
      function (a, host) {
        figure("fig-touchpoints", a.figure);
        table(host, a.rows, ["contact_number", "purchases", "share", "cumulative_share", "reference_share"], 12);
      });
  }

  function paths(c, gen) {
    var level = $("paths-level").value;
    var spec = { level: level, dfg: true, collapse_repeats: true, filters: filters(c, true) };
    if (c.model && level === "phase") { spec.model = c.model; }
    if (c.journeyType) { spec.journey_types = [c.journeyType]; }
    return panel("paths", gen, function () { return api("POST", "/v1/analyses/paths", spec); },
      function (a, host) {
        figure("fig-paths", a.figure);
        var rows = a.rows.slice().sort(function (x, y) { return (y.count || 0) - (x.count || 0); });
        table(host, rows, ["source", "target", "count", "persons"], 100);
      });
  }

  function attribution(c, gen) {
    var spec = { models: ATTRIBUTION_MODELS, filters: filters(c, false) };
    if (c.persona) { spec.filters.personas = [c.persona]; }
    if (c.journeyType) { spec.journey_types = [c.journeyType]; }
    return panel("attribution", gen, function () { return api("POST", "/v1/attribution", spec); },
      function (a, host) {
        figure("fig-attribution", a.figure);
        table(host, a.rows, ["model", "channel", "attributed_conversions", "attributed_value"], 12);
      });
  }

  function satisfaction(c, gen) {
    var spec = { by: "phase", filters: filters(c, true) };
    return panel("satisfaction", gen, function () { return api("POST", "/v1/analyses/satisfaction", spec); },
      function (a, host) {
        var curve = (a.extra && a.extra.emotion_curve) || [];
        figure("fig-satisfaction", curve.length ? a.figure : null);
        table(host, curve, ["phase", "n", "normalised", "normalised_low", "normalised_high"], 12);
      });
  }

  function loyalty(c, gen) {
    var spec = { filters: filters(c, true) };
    return panel("loyalty", gen, function () { return api("POST", "/v1/analyses/loyalty", spec); },
      function (a, host) {
        var cohorts = (a.extra && a.extra.cohorts) || [];
        figure("fig-loyalty", cohorts.length ? a.figure : null);
        table(host, a.rows, ["metric", "value", "low", "high", "n"], 12);
      });
  }

  function refresh() {
    generation += 1;
    var gen = generation;
    var c = chosen();
    $("filter-text").textContent = describe(c);
    setStatus("loading…");
    // one after the other: the server answers on one thread anyway
    var steps = [funnel, touchpoints, paths, attribution, satisfaction, loyalty, journeyMap];
    var chain = Promise.resolve();
    steps.forEach(function (step) { chain = chain.then(function () { return step(c, gen); }); });
    chain.then(function () {
      if (gen === generation) {
        setStatus("updated " + new Date().toLocaleTimeString());
        document.body.dataset.ready = String(gen);
      }
    });
  }

  if (key()) { start(); } else { showLogin(""); }
})();
