// A list of rows drawn as one HTML table: documents, lines or search results.
// Python sends every row; the browser draws them in one pass, so a few hundred
// rows cost one innerHTML assignment instead of hundreds of widgets.

const LOW = 0.6;
const HIGH = 0.85;

function escapeHtml(value) {
  return String(value ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

function confidenceCell(value) {
  if (value === null || value === undefined || value === "") {
    return '<td class="okw-num"></td>';
  }
  const number = Number(value);
  let level = "high";
  if (number < LOW) {
    level = "low";
  } else if (number < HIGH) {
    level = "mid";
  }
  return (
    `<td class="okw-num"><span class="okw-conf okw-conf-${level}">` +
    `${number.toFixed(2)}</span></td>`
  );
}

function progressCell(value) {
  // value: {done, total, label, state}
  if (!value || typeof value !== "object") {
    return "<td></td>";
  }
  const total = Math.max(1, Number(value.total) || 0);
  const done = Math.min(total, Math.max(0, Number(value.done) || 0));
  const percent = Math.round((100 * done) / total);
  const state = escapeHtml(value.state || "");
  return (
    `<td><div class="okw-progress okw-state-${state}" title="${escapeHtml(value.label)}">` +
    `<div class="okw-progress-bar" style="width:${percent}%"></div>` +
    `<span class="okw-progress-label">${escapeHtml(value.label)}</span></div></td>`
  );
}

function cellHtml(column, row) {
  const value = row[column.key];
  switch (column.kind) {
    case "confidence":
      return confidenceCell(value);
    case "progress":
      return progressCell(value);
    case "check":
      return `<td class="okw-check">${value ? "✓" : ""}</td>`;
    case "number":
      return `<td class="okw-num">${escapeHtml(value)}</td>`;
    default: {
      const text = escapeHtml(value);
      const empty = text === "" ? ' okw-empty-text' : "";
      return `<td class="okw-text${empty}" title="${text}">${text || "(empty)"}</td>`;
    }
  }
}

function render({ model, el }) {
  el.classList.add("okw-rows");
  const scroller = document.createElement("div");
  scroller.className = "okw-rows-scroll";
  scroller.tabIndex = 0;
  // JupyterLab would otherwise treat arrow keys as notebook shortcuts.
  scroller.setAttribute("data-lm-suppress-shortcuts", "true");
  const table = document.createElement("table");
  const head = document.createElement("thead");
  const body = document.createElement("tbody");
  table.append(head, body);
  const empty = document.createElement("div");
  empty.className = "okw-rows-empty";
  scroller.append(table, empty);
  el.append(scroller);

  let rowById = new Map();
  let ids = [];

  function drawHead() {
    const columns = model.get("columns");
    head.innerHTML =
      "<tr>" +
      columns
        .map(
          (c) =>
            `<th class="okw-col-${escapeHtml(c.kind || "text")}"` +
            (c.width ? ` style="width:${escapeHtml(c.width)}"` : "") +
            `>${escapeHtml(c.label)}</th>`,
        )
        .join("") +
      "</tr>";
  }

  function drawRows() {
    const started = performance.now();
    const columns = model.get("columns");
    const rows = model.get("rows");
    const parts = [];
    ids = [];
    for (const row of rows) {
      ids.push(row.id);
      parts.push(
        `<tr data-id="${escapeHtml(row.id)}" class="okw-row">` +
          columns.map((c) => cellHtml(c, row)).join("") +
          "</tr>",
      );
    }
    body.innerHTML = parts.join("");
    rowById = new Map();
    for (const tr of body.children) {
      rowById.set(Number(tr.dataset.id), tr);
    }
    empty.textContent = rows.length ? "" : model.get("empty_text");
    empty.style.display = rows.length ? "none" : "block";
    el.dataset.rowCount = String(rows.length);
    el.dataset.drawMs = (performance.now() - started).toFixed(1);
    markSelected(false);
  }

  function markSelected(scroll) {
    const selected = model.get("selected");
    for (const tr of body.querySelectorAll("tr.okw-selected")) {
      tr.classList.remove("okw-selected");
    }
    const tr = rowById.get(selected);
    if (tr) {
      tr.classList.add("okw-selected");
      if (scroll) {
        tr.scrollIntoView({ block: "nearest" });
      }
    }
  }

  function select(id) {
    if (model.get("selected") !== id) {
      model.set("selected", id);
      model.save_changes();
    }
  }

  body.addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) {
      select(Number(tr.dataset.id));
      scroller.focus({ preventScroll: true });
    }
  });
  body.addEventListener("dblclick", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) {
      model.send({ event: "activate", id: Number(tr.dataset.id) });
    }
  });
  scroller.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const position = ids.indexOf(model.get("selected"));
    let handled = true;
    if (event.key === "ArrowDown" || event.key === "j") {
      if (ids.length) select(ids[Math.min(ids.length - 1, position + 1)]);
    } else if (event.key === "ArrowUp" || event.key === "k") {
      if (ids.length) select(ids[Math.max(0, position - 1)]);
    } else if (event.key === "Home") {
      if (ids.length) select(ids[0]);
    } else if (event.key === "End") {
      if (ids.length) select(ids[ids.length - 1]);
    } else if (event.key === "Enter") {
      if (position >= 0) model.send({ event: "activate", id: ids[position] });
    } else if (model.get("row_keys").includes(event.key) && position >= 0) {
      model.send({ event: "key", key: event.key, id: ids[position] });
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  });

  function applyHeight() {
    scroller.style.height = model.get("height");
    el.classList.toggle("okw-wrap", Boolean(model.get("wrap")));
  }

  model.on("change:columns", () => {
    drawHead();
    drawRows();
  });
  model.on("change:rows", drawRows);
  model.on("change:selected", () => markSelected(true));
  model.on("change:height", applyHeight);
  model.on("change:wrap", applyHeight);
  model.on("msg:custom", (message) => {
    if (message.event === "scroll_to") {
      markSelected(true);
    } else if (message.event === "focus") {
      scroller.focus({ preventScroll: true });
    }
  });
  applyHeight();
  drawHead();
  drawRows();
  markSelected(true);
}

export default { render };
