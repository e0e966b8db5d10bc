// Front end of ocrkit's PageView: the page image with an SVG layer of line boxes.
//
// The SVG viewBox is the image's pixel space, so boxes are drawn with the bbox
// values as they are, and zooming only resizes the stage. Pointer positions are
// mapped back to image pixels before anything is sent to Python.

const SVG_NS = "http://www.w3.org/2000/svg";
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
const MIN_ZOOM = 0.25;
const MAX_ZOOM = 8;
const ZOOM_STEP = 1.25;
// Screen pixels a press must travel before it counts as a drag, not a click.
const DRAG_THRESHOLD = 3;
// Screen pixels: a drawn box smaller than this is taken for a click.
const MIN_DRAWN_BOX = 5;
// Screen pixels of grey around the page and the side of a resize handle.
const PAGE_MARGIN = 16;
const HANDLE_SIZE = 9;
const SAVE_ZOOM_DELAY_MS = 200;

const ORIGIN_LABELS = {
  ocr: "OCR",
  text_layer: "text layer",
  edited: "edited",
  added: "added",
};

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, value);
  }
  return element;
}

function htmlElement(name, className, text) {
  const element = document.createElement(name);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function roundPixel(value) {
  return Math.round(value * 10) / 10;
}

function imageBytes(value) {
  if (!value) return null;
  if (value instanceof DataView) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return null;
}

function percent(confidence) {
  return `${Math.round(confidence * 100)} %`;
}

class PageCanvas {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.lines = [];
    this.lineById = new Map();
    this.boxById = new Map();
    this.checkById = new Map();
    this.scale = 1;
    this.stageLeft = PAGE_MARGIN;
    this.drag = null;
    this.pendingAnchor = null;
    this.imageUrl = null;
    this.saveZoomTimer = null;
    this.hiddenIds = new Set();
    this.selectingHere = false;
    this.scrollToTop = false;
    this.buildDom();
    this.listen();
    this.updateHeight();
    this.updateMode();
    this.updateImage();
    this.updateLines();
  }

  // -- DOM ------------------------------------------------------------------------

  buildDom() {
    const root = htmlElement("div", "ocrkit-page-view");
    this.root = root;

    const toolbar = htmlElement("div", "opv-toolbar");
    toolbar.setAttribute("role", "toolbar");
    const zoomGroup = htmlElement("div", "opv-group");
    this.zoomOutButton = this.button("−", "Zoom out (-)");
    this.zoomLabel = htmlElement("span", "opv-zoom-label", "100 %");
    this.zoomInButton = this.button("+", "Zoom in (+)");
    this.fitButton = this.button("Fit width", "Fit the page width (0)");
    zoomGroup.append(
      this.zoomOutButton,
      this.zoomLabel,
      this.zoomInButton,
      this.fitButton,
    );

    const modeGroup = htmlElement("div", "opv-group opv-segmented");
    this.selectButton = this.button("Select", "Select, move and resize boxes");
    this.drawButton = this.button("Draw", "Drag on the page to draw a new box");
    modeGroup.append(this.selectButton, this.drawButton);

    this.deleteButton = this.button("Delete box", "Delete the selected box (Del)");
    this.deleteButton.classList.add("opv-danger");

    toolbar.append(zoomGroup, modeGroup, this.deleteButton, this.buildLegend());

    const viewport = htmlElement("div", "opv-viewport");
    viewport.tabIndex = 0;
    viewport.setAttribute("aria-label", "Page with line boxes");
    // JupyterLab runs notebook shortcuts (d d deletes a cell) on keys typed inside
    // its outputs unless an ancestor carries this attribute.
    viewport.setAttribute("data-lm-suppress-shortcuts", "true");
    this.viewport = viewport;

    this.canvas = htmlElement("div", "opv-canvas");
    this.stage = htmlElement("div", "opv-stage");
    this.img = htmlElement("img", "opv-image");
    this.img.alt = "";
    this.img.draggable = false;

    this.svg = svgElement("svg", { class: "opv-overlay", preserveAspectRatio: "none" });
    this.boxLayer = svgElement("g", { class: "opv-boxes" });
    this.selection = svgElement("g", { class: "opv-selection" });
    this.selectionHalo = svgElement("rect", { class: "opv-selection-halo" });
    this.selectionOutline = svgElement("rect", { class: "opv-selection-outline" });
    this.selection.append(this.selectionHalo, this.selectionOutline);
    this.handles = {};
    for (const name of HANDLES) {
      const handle = svgElement("rect", { class: `opv-handle opv-handle-${name}` });
      handle.dataset.handle = name;
      this.handles[name] = handle;
      this.selection.append(handle);
    }
    this.draft = svgElement("rect", { class: "opv-draft" });
    this.svg.append(this.boxLayer, this.selection, this.draft);

    this.tooltip = htmlElement("div", "opv-tooltip");
    this.tooltip.setAttribute("role", "tooltip");
    this.stage.append(this.img, this.svg, this.tooltip);
    this.canvas.append(this.stage);
    this.emptyMessage = htmlElement("div", "opv-empty", "No page image");
    viewport.append(this.canvas, this.emptyMessage);

    this.status = htmlElement("div", "opv-status");
    this.status.setAttribute("aria-live", "polite");

    root.append(toolbar, viewport, this.status);
    this.el.append(root);
  }

  button(label, title) {
    const element = htmlElement("button", "opv-button", label);
    element.type = "button";
    element.title = title;
    return element;
  }

  buildLegend() {
    const legend = htmlElement("div", "opv-legend");
    const [low, high] = this.thresholds();
    const entries = [
      ["opv-low", `< ${Math.round(low * 100)} %`, "Confidence below the low threshold"],
      [
        "opv-mid",
        `${Math.round(low * 100)}–${Math.round(high * 100)} %`,
        "Confidence between the thresholds",
      ],
      ["opv-high", `≥ ${Math.round(high * 100)} %`, "Confidence at or above the high threshold"],
      ["opv-mid opv-origin-edited", "edited", "Edited box or text (dashed)"],
      ["opv-mid opv-origin-added", "added", "Box drawn by hand (dotted)"],
      ["opv-mid opv-verified", "verified", "Verified line (filled, with a check)"],
    ];
    for (const [classes, label, title] of entries) {
      const item = htmlElement("span", "opv-legend-item");
      item.title = title;
      const swatch = svgElement("svg", {
        class: "opv-swatch",
        width: "22",
        height: "14",
        viewBox: "0 0 22 14",
      });
      swatch.append(svgElement("rect", { class: `opv-box ${classes}`, x: 2, y: 2, width: 18, height: 10 }));
      if (classes.includes("opv-verified")) {
        swatch.append(svgElement("path", { class: "opv-check", d: "M6 7 L9.5 10 L16 3.5" }));
      }
      item.append(swatch, document.createTextNode(label));
      legend.append(item);
    }
    this.legend = legend;
    return legend;
  }

  // -- model events ---------------------------------------------------------------

  listen() {
    const on = (event, handler) => {
      const bound = handler.bind(this);
      this.model.on(event, bound);
      (this.modelHandlers ??= []).push([event, bound]);
    };
    on("change:image", this.updateImage);
    on("change:image_format", this.updateImage);
    on("change:image_width", this.updatePageSize);
    on("change:image_height", this.updatePageSize);
    on("change:lines", this.updateLines);
    on("change:selected", this.onSelectedChange);
    on("change:zoom", this.onZoomChange);
    on("change:mode", this.updateMode);
    on("change:height", this.updateHeight);
    on("change:confidence_thresholds", this.onThresholdsChange);
    on("msg:custom", this.onMessage);

    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.viewport);

    this.img.addEventListener("load", () => this.updatePageSize());
    this.zoomOutButton.addEventListener("click", () => this.zoomBy(1 / ZOOM_STEP));
    this.zoomInButton.addEventListener("click", () => this.zoomBy(ZOOM_STEP));
    this.fitButton.addEventListener("click", () => this.setZoom(1));
    this.selectButton.addEventListener("click", () => this.setMode("select"));
    this.drawButton.addEventListener("click", () => this.setMode("draw"));
    this.deleteButton.addEventListener("click", () => this.deleteSelected());

    this.svg.addEventListener("pointerdown", (event) => this.onPointerDown(event));
    this.svg.addEventListener("pointermove", (event) => this.onPointerMove(event));
    this.svg.addEventListener("pointerup", (event) => this.onPointerUp(event));
    this.svg.addEventListener("pointercancel", () => this.cancelDrag());
    this.svg.addEventListener("pointerover", (event) => this.onPointerOver(event));
    this.svg.addEventListener("pointerleave", () => this.hideTooltip());
    this.viewport.addEventListener("wheel", (event) => this.onWheel(event), {
      passive: false,
    });
    this.viewport.addEventListener("keydown", (event) => this.onKeyDown(event));
  }

  destroy() {
    for (const [event, handler] of this.modelHandlers ?? []) {
      this.model.off(event, handler);
    }
    this.resizeObserver.disconnect();
    clearTimeout(this.saveZoomTimer);
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
  }

  onMessage(message) {
    if (!message || typeof message !== "object") return;
    if (message.event === "redraw") {
      this.hiddenIds.clear();
      this.drawBoxes();
    } else if (message.event === "scroll_to") {
      this.scrollToLine(message.id, true);
    }
  }

  thresholds() {
    const value = this.model.get("confidence_thresholds");
    return Array.isArray(value) && value.length === 2 ? value : [0.6, 0.85];
  }

  onThresholdsChange() {
    this.legend.replaceWith(this.buildLegend());
    this.drawBoxes();
  }

  updateHeight() {
    this.viewport.style.height = this.model.get("height") || "720px";
  }

  updateMode() {
    const mode = this.model.get("mode");
    this.root.classList.toggle("opv-mode-draw", mode === "draw");
    this.selectButton.setAttribute("aria-pressed", String(mode !== "draw"));
    this.drawButton.setAttribute("aria-pressed", String(mode === "draw"));
    this.updateStatus();
  }

  setMode(mode) {
    this.model.set("mode", mode);
    this.model.save_changes();
  }

  updateImage() {
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = null;
    const bytes = imageBytes(this.model.get("image"));
    if (!bytes || bytes.byteLength === 0) {
      this.img.removeAttribute("src");
      this.updatePageSize();
      return;
    }
    // A new page opens at its top; the load handler does the scrolling.
    this.scrollToTop = true;
    const format = this.model.get("image_format") === "jpeg" ? "jpeg" : "png";
    this.imageUrl = URL.createObjectURL(new Blob([bytes], { type: `image/${format}` }));
    this.img.src = this.imageUrl;
  }

  pageSize() {
    const width = this.model.get("image_width") || this.img.naturalWidth || 0;
    const height = this.model.get("image_height") || this.img.naturalHeight || 0;
    return [width, height];
  }

  updatePageSize() {
    const [width, height] = this.pageSize();
    const hasPage = width > 0 && height > 0;
    this.root.classList.toggle("opv-no-page", !hasPage);
    this.img.style.visibility = this.img.getAttribute("src") ? "visible" : "hidden";
    if (!hasPage) return;
    this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.layout();
    this.drawBoxes();
    if (this.scrollToTop) {
      this.scrollToTop = false;
      this.viewport.scrollTo(0, 0);
    }
    const selected = this.model.get("selected");
    if (selected >= 0) this.scrollToLine(selected, true);
  }

  // -- layout and zoom ------------------------------------------------------------

  // Zoom 1 fits the page width into the viewport; the stage is the page at scale.
  layout() {
    const [width, height] = this.pageSize();
    const viewWidth = this.viewport.clientWidth;
    if (!width || !height || !viewWidth) return;
    const zoom = this.model.get("zoom") || 1;
    const fitScale = Math.max(viewWidth - 2 * PAGE_MARGIN, 50) / width;
    const anchor = this.pendingAnchor ?? {
      x: this.viewport.clientWidth / 2,
      y: this.viewport.clientHeight / 2,
    };
    this.pendingAnchor = null;
    // The image point under the anchor stays under it after the zoom.
    const imageX = (this.viewport.scrollLeft + anchor.x - this.stageLeft) / this.scale;
    const imageY = (this.viewport.scrollTop + anchor.y - PAGE_MARGIN) / this.scale;
    const hadLayout = this.stage.style.width !== "";

    this.scale = fitScale * zoom;
    const stageWidth = width * this.scale;
    const stageHeight = height * this.scale;
    const canvasWidth = Math.max(viewWidth, stageWidth + 2 * PAGE_MARGIN);
    this.stageLeft = Math.max(PAGE_MARGIN, (canvasWidth - stageWidth) / 2);
    this.canvas.style.width = `${canvasWidth}px`;
    this.canvas.style.height = `${stageHeight + 2 * PAGE_MARGIN}px`;
    this.stage.style.width = `${stageWidth}px`;
    this.stage.style.height = `${stageHeight}px`;
    this.stage.style.left = `${this.stageLeft}px`;
    this.stage.style.top = `${PAGE_MARGIN}px`;
    this.zoomLabel.textContent = `${Math.round(zoom * 100)} %`;
    this.zoomOutButton.disabled = zoom <= MIN_ZOOM + 1e-6;
    this.zoomInButton.disabled = zoom >= MAX_ZOOM - 1e-6;

    if (hadLayout) {
      this.viewport.scrollLeft = imageX * this.scale + this.stageLeft - anchor.x;
      this.viewport.scrollTop = imageY * this.scale + PAGE_MARGIN - anchor.y;
    }
    this.placeSelection();
    this.hideTooltip();
  }

  onZoomChange() {
    this.layout();
  }

  setZoom(zoom, anchor) {
    const value = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
    if (value === this.model.get("zoom")) return;
    this.pendingAnchor = anchor ?? null;
    this.model.set("zoom", value);
    // Wheel zooming fires many events; Python gets the value once it settles.
    clearTimeout(this.saveZoomTimer);
    this.saveZoomTimer = setTimeout(() => this.model.save_changes(), SAVE_ZOOM_DELAY_MS);
  }

  zoomBy(factor, anchor) {
    this.setZoom((this.model.get("zoom") || 1) * factor, anchor);
  }

  onWheel(event) {
    if (!event.ctrlKey && !event.metaKey) return;
    event.preventDefault();
    const bounds = this.viewport.getBoundingClientRect();
    const anchor = { x: event.clientX - bounds.left, y: event.clientY - bounds.top };
    // Trackpads send small deltas many times a second; the exponent keeps it smooth.
    const delta = event.deltaMode === 1 ? event.deltaY * 20 : event.deltaY;
    this.zoomBy(Math.exp(-delta * 0.002), anchor);
  }

  // -- drawing --------------------------------------------------------------------

  updateLines() {
    const lines = this.model.get("lines");
    this.lines = Array.isArray(lines) ? lines : [];
    this.lineById = new Map(this.lines.map((line) => [line.id, line]));
    this.hiddenIds.clear();
    this.drawBoxes();
  }

  levelClass(confidence) {
    const [low, high] = this.thresholds();
    if (confidence < low) return "opv-low";
    if (confidence < high) return "opv-mid";
    return "opv-high";
  }

  // Builds every box in one detached fragment and attaches it once, so 300 boxes
  // cost one style and layout pass.
  drawBoxes() {
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    const checks = [];
    this.boxById = new Map();
    this.checkById = new Map();
    for (const line of this.lines) {
      if (this.hiddenIds.has(line.id)) continue;
      const [x0, y0, x1, y1] = line.bbox;
      const classes = ["opv-box", this.levelClass(line.confidence)];
      classes.push(`opv-origin-${line.origin}`);
      if (line.verified) classes.push("opv-verified");
      const box = svgElement("rect", {
        class: classes.join(" "),
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
      });
      box.dataset.id = String(line.id);
      fragment.append(box);
      this.boxById.set(line.id, box);

      if (line.verified) {
        const check = svgElement("path", { class: "opv-check" });
        this.placeCheck(check, line.bbox);
        checks.push(check);
        this.checkById.set(line.id, check);
      }
    }

    // Checks go above all boxes, so a neighbour's fill never hides one.
    fragment.append(...checks);
    this.hideDraft();
    this.boxLayer.replaceChildren(fragment);
    this.placeSelection();
    this.updateStatus();
    // Diagnostics for tests and the browser console. drawMs is the time to build
    // and attach the boxes, without the browser's style and paint work after it.
    this.root.dataset.boxCount = String(this.boxById.size);
    this.root.dataset.drawMs = (performance.now() - started).toFixed(1);
  }

  // A check mark just right of the box, as tall as the box within 6 to 60 px.
  placeCheck(check, bbox) {
    const [, y0, x1, y1] = bbox;
    const size = clamp(y1 - y0, 6, 60);
    const x = x1 + size * 0.15;
    const y = (y0 + y1) / 2 - size / 2;
    const d =
      `M${x} ${y + size * 0.55} L${x + size * 0.3} ${y + size * 0.85} ` +
      `L${x + size * 0.8} ${y + size * 0.15}`;
    check.setAttribute("d", d);
  }

  selectedBox() {
    const id = this.model.get("selected");
    return this.boxById.get(id) ?? null;
  }

  boxRect(box) {
    const x = Number(box.getAttribute("x"));
    const y = Number(box.getAttribute("y"));
    return [x, y, x + Number(box.getAttribute("width")), y + Number(box.getAttribute("height"))];
  }

  setBoxRect(box, bbox) {
    const [x0, y0, x1, y1] = bbox;
    box.setAttribute("x", x0);
    box.setAttribute("y", y0);
    box.setAttribute("width", x1 - x0);
    box.setAttribute("height", y1 - y0);
  }

  // Outline and handles of the selected box; handles keep their screen size.
  placeSelection(bbox) {
    const box = this.selectedBox();
    const rect = bbox ?? (box ? this.boxRect(box) : null);
    this.boxLayer.querySelector(".opv-selected")?.classList.remove("opv-selected");
    this.deleteButton.disabled = !box;
    if (!rect) {
      this.selection.style.display = "none";
      return;
    }
    box?.classList.add("opv-selected");
    this.selection.style.display = "";
    this.setBoxRect(this.selectionHalo, rect);
    this.setBoxRect(this.selectionOutline, rect);
    const [x0, y0, x1, y1] = rect;
    const size = HANDLE_SIZE / this.scale;
    const xs = { w: x0, e: x1, c: (x0 + x1) / 2 };
    const ys = { n: y0, s: y1, c: (y0 + y1) / 2 };
    for (const name of HANDLES) {
      const x = xs[name.includes("w") ? "w" : name.includes("e") ? "e" : "c"];
      const y = ys[name.includes("n") ? "n" : name.includes("s") ? "s" : "c"];
      this.setBoxRect(this.handles[name], [x - size / 2, y - size / 2, x + size / 2, y + size / 2]);
    }
  }

  onSelectedChange() {
    this.placeSelection();
    this.updateStatus();
    // Python may select a line the user cannot see, so its box is brought into
    // view. A click here must not scroll the page away from under the pointer.
    if (!this.selectingHere) this.scrollToLine(this.model.get("selected"), false);
  }

  select(id) {
    if (this.model.get("selected") === id) return;
    // Backbone runs the change handlers inside set(), while the flag is up.
    this.selectingHere = true;
    try {
      this.model.set("selected", id);
    } finally {
      this.selectingHere = false;
    }
    this.model.save_changes();
  }

  scrollToLine(id, centre) {
    const line = this.lineById.get(id);
    const viewWidth = this.viewport.clientWidth;
    if (!line || !viewWidth || !this.stage.style.width) return;
    const [x0, y0, x1, y1] = line.bbox;
    const left = this.stageLeft + x0 * this.scale;
    const top = PAGE_MARGIN + y0 * this.scale;
    const right = this.stageLeft + x1 * this.scale;
    const bottom = PAGE_MARGIN + y1 * this.scale;
    const view = this.viewport;
    const visible =
      left >= view.scrollLeft &&
      right <= view.scrollLeft + viewWidth &&
      top >= view.scrollTop &&
      bottom <= view.scrollTop + view.clientHeight;
    if (visible && !centre) return;
    view.scrollTo({
      left: Math.max(0, (left + right) / 2 - viewWidth / 2),
      top: Math.max(0, (top + bottom) / 2 - view.clientHeight / 2),
      behavior: "smooth",
    });
  }

  updateStatus() {
    const line = this.lineById.get(this.model.get("selected"));
    this.status.replaceChildren();
    if (line) {
      const parts = [
        `Line ${line.id}`,
        percent(line.confidence),
        ORIGIN_LABELS[line.origin] ?? line.origin,
      ];
      if (line.verified) parts.push("verified");
      const [x0, y0, x1, y1] = line.bbox.map(Math.round);
      parts.push(`box ${x0}, ${y0} – ${x1}, ${y1} px`);
      this.status.append(
        htmlElement("span", "opv-status-meta", parts.join(" · ")),
        htmlElement("span", "opv-status-text", line.text || "(no text)"),
      );
      return;
    }
    const hint =
      this.model.get("mode") === "draw"
        ? "Drag on the page to draw a new box. Click a box to select it."
        : "Click a box to select it, drag it to move, drag a handle to resize. " +
          "Ctrl + wheel zooms, dragging the page scrolls.";
    this.status.append(
      htmlElement("span", "opv-status-meta", `${this.lines.length} boxes`),
      htmlElement("span", "opv-status-hint", hint),
    );
  }

  // -- pointer interaction --------------------------------------------------------

  toImage(event) {
    const bounds = this.stage.getBoundingClientRect();
    const [width, height] = this.pageSize();
    return {
      x: ((event.clientX - bounds.left) / bounds.width) * width,
      y: ((event.clientY - bounds.top) / bounds.height) * height,
    };
  }

  onPointerDown(event) {
    if (event.button !== 0 && event.button !== 1) return;
    this.viewport.focus({ preventScroll: true });
    this.hideTooltip();
    const start = {
      pointerId: event.pointerId,
      clientX: event.clientX,
      clientY: event.clientY,
      point: this.toImage(event),
      active: false,
    };
    const target = event.target;
    const selectedBox = this.selectedBox();
    if (event.button === 1) {
      this.drag = { ...start, kind: "pan", ...this.scrollOrigin() };
    } else if (target.dataset?.handle && selectedBox) {
      const id = this.model.get("selected");
      this.drag = {
        ...start,
        kind: "resize",
        handle: target.dataset.handle,
        id,
        bbox: this.boxRect(selectedBox),
      };
    } else if (target === this.selectionOutline && selectedBox) {
      const id = this.model.get("selected");
      this.drag = { ...start, kind: "move", id, bbox: this.boxRect(selectedBox) };
    } else if (target.classList.contains("opv-box")) {
      const id = Number(target.dataset.id);
      this.select(id);
      this.drag = { ...start, kind: "move", id, bbox: this.boxRect(target) };
    } else if (this.model.get("mode") === "draw") {
      this.drag = { ...start, kind: "draw" };
    } else {
      this.drag = { ...start, kind: "pan", clickDeselects: true, ...this.scrollOrigin() };
    }
    this.svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  }

  scrollOrigin() {
    return { scrollLeft: this.viewport.scrollLeft, scrollTop: this.viewport.scrollTop };
  }

  onPointerMove(event) {
    const drag = this.drag;
    if (!drag || event.pointerId !== drag.pointerId) return;
    const dx = event.clientX - drag.clientX;
    const dy = event.clientY - drag.clientY;
    if (!drag.active) {
      if (Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
      drag.active = true;
      this.root.classList.add("opv-dragging");
    }

    if (drag.kind === "pan") {
      this.viewport.scrollLeft = drag.scrollLeft - dx;
      this.viewport.scrollTop = drag.scrollTop - dy;
      return;
    }

    const point = this.toImage(event);
    if (drag.kind === "draw") {
      drag.bbox = this.clampBox([
        Math.min(drag.point.x, point.x),
        Math.min(drag.point.y, point.y),
        Math.max(drag.point.x, point.x),
        Math.max(drag.point.y, point.y),
      ]).map(roundPixel);
      this.setBoxRect(this.draft, drag.bbox);
      this.draft.style.display = "inline";
      return;
    }

    const moveX = point.x - drag.point.x;
    const moveY = point.y - drag.point.y;
    const moved =
      drag.kind === "move"
        ? this.movedBox(drag.bbox, moveX, moveY)
        : this.resizedBox(drag.bbox, drag.handle, moveX, moveY);
    // Rounded as sent, so the box on screen is the box Python gets.
    drag.current = moved.map(roundPixel);

    const box = this.boxById.get(drag.id);
    if (box) this.setBoxRect(box, drag.current);
    const check = this.checkById.get(drag.id);
    if (check) this.placeCheck(check, drag.current);
    this.placeSelection(drag.current);
  }

  onPointerUp(event) {
    const drag = this.drag;
    if (!drag || event.pointerId !== drag.pointerId) return;
    this.drag = null;
    this.root.classList.remove("opv-dragging");
    if (this.svg.hasPointerCapture(event.pointerId)) {
      this.svg.releasePointerCapture(event.pointerId);
    }
    if (!drag.active) {
      if (drag.clickDeselects) this.select(-1);
      return;
    }
    if ((drag.kind === "move" || drag.kind === "resize") && drag.current) {
      this.model.send({
        event: "box_changed",
        id: drag.id,
        bbox: drag.current,
      });
    } else if (drag.kind === "draw" && drag.bbox) {
      const [x0, y0, x1, y1] = drag.bbox;
      const bigEnough =
        (x1 - x0) * this.scale >= MIN_DRAWN_BOX && (y1 - y0) * this.scale >= MIN_DRAWN_BOX;
      if (bigEnough) {
        // The draft stays on screen until Python sends the lines with the new box.
        this.model.send({ event: "box_added", bbox: drag.bbox });
      } else {
        this.hideDraft();
      }
    }
  }

  cancelDrag() {
    const drag = this.drag;
    if (!drag) return;
    this.drag = null;
    this.root.classList.remove("opv-dragging");
    if (drag.kind === "move" || drag.kind === "resize") {
      const box = this.boxById.get(drag.id);
      if (box) this.setBoxRect(box, drag.bbox);
      const check = this.checkById.get(drag.id);
      if (check) this.placeCheck(check, drag.bbox);
      this.placeSelection();
    } else if (drag.kind === "draw") {
      this.hideDraft();
    } else if (drag.kind === "pan") {
      this.viewport.scrollLeft = drag.scrollLeft;
      this.viewport.scrollTop = drag.scrollTop;
    }
  }

  hideDraft() {
    this.draft.style.display = "none";
  }

  clampBox([x0, y0, x1, y1]) {
    const [width, height] = this.pageSize();
    return [clamp(x0, 0, width), clamp(y0, 0, height), clamp(x1, 0, width), clamp(y1, 0, height)];
  }

  // The box shifted by (dx, dy), kept whole inside the page.
  movedBox([x0, y0, x1, y1], dx, dy) {
    const [width, height] = this.pageSize();
    const shiftX = clamp(dx, -x0, width - x1);
    const shiftY = clamp(dy, -y0, height - y1);
    return [x0 + shiftX, y0 + shiftY, x1 + shiftX, y1 + shiftY];
  }

  // The box with the handle's edges moved; dragging an edge past the opposite one
  // flips the box instead of giving it a negative size.
  resizedBox([x0, y0, x1, y1], handle, dx, dy) {
    if (handle.includes("w")) x0 += dx;
    if (handle.includes("e")) x1 += dx;
    if (handle.includes("n")) y0 += dy;
    if (handle.includes("s")) y1 += dy;
    const minimum = 2 / this.scale;
    let box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    box = this.clampBox(box);
    if (box[2] - box[0] < minimum) box[2] = box[0] + minimum;
    if (box[3] - box[1] < minimum) box[3] = box[1] + minimum;
    return box;
  }

  // -- tooltip --------------------------------------------------------------------

  onPointerOver(event) {
    if (this.drag) return;
    const target = event.target;
    if (!target.classList?.contains("opv-box")) {
      this.hideTooltip();
      return;
    }
    const line = this.lineById.get(Number(target.dataset.id));
    if (!line) return;
    const meta = [percent(line.confidence), ORIGIN_LABELS[line.origin] ?? line.origin];
    if (line.verified) meta.push("verified");
    this.tooltip.replaceChildren(
      htmlElement("div", "opv-tooltip-text", line.text || "(no text)"),
      htmlElement("div", "opv-tooltip-meta", meta.join(" · ")),
    );
    const [x0, y0, , y1] = line.bbox;
    const stageHeight = this.stage.clientHeight;
    const below = y1 * this.scale + 6;
    this.tooltip.style.left = `${Math.max(0, x0 * this.scale)}px`;
    this.tooltip.style.top = `${below}px`;
    this.tooltip.style.bottom = "";
    if (below + 60 > stageHeight) {
      this.tooltip.style.top = "";
      this.tooltip.style.bottom = `${stageHeight - y0 * this.scale + 6}px`;
    }
    this.tooltip.classList.add("opv-visible");
  }

  hideTooltip() {
    this.tooltip.classList.remove("opv-visible");
  }

  // -- keyboard -------------------------------------------------------------------

  // TODO: boxes cannot be selected, moved or resized from the keyboard yet (Tab
  // between boxes, arrow keys to nudge), so editing a box needs a pointer.
  onKeyDown(event) {
    let handled = true;
    if (event.key === "Delete" || event.key === "Backspace") {
      this.deleteSelected();
    } else if (event.key === "Escape") {
      if (this.drag) this.cancelDrag();
      else this.select(-1);
    } else if (event.key === "+" || event.key === "=") {
      this.zoomBy(ZOOM_STEP);
    } else if (event.key === "-") {
      this.zoomBy(1 / ZOOM_STEP);
    } else if (event.key === "0") {
      this.setZoom(1);
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  deleteSelected() {
    const id = this.model.get("selected");
    if (!this.lineById.has(id)) return;
    // Hidden until Python sends the lines without it, or a redraw message.
    this.hiddenIds.add(id);
    this.boxById.get(id)?.remove();
    this.checkById.get(id)?.remove();
    this.boxById.delete(id);
    this.placeSelection();
    this.model.send({ event: "box_deleted", id });
  }
}

function render({ model, el }) {
  const canvas = new PageCanvas(model, el);
  return () => canvas.destroy();
}

export default { render };
