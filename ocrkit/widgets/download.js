// A button that requests a file from Python and saves the bytes it sends back.
// The file travels as a message buffer and is saved through a Blob URL, which
// works the same in JupyterLab and in Voila, where no file server is at hand.

function render({ model, el }) {
  el.classList.add("okw-download");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "okw-download-button";
  el.append(button);

  function update() {
    const busy = model.get("busy");
    button.textContent = busy ? "Preparing…" : model.get("description");
    button.disabled = busy || model.get("disabled");
    button.title = model.get("tooltip");
  }

  button.addEventListener("click", () => {
    model.send({ event: "request" });
  });
  model.on("msg:custom", (message, buffers) => {
    if (message.event !== "file" || !buffers || !buffers.length) {
      return;
    }
    // A DataView over the message; Blob copies just its bytes.
    const data = buffers[0];
    const blob = new Blob([data], { type: message.mime });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = message.filename;
    link.style.display = "none";
    document.body.append(link);
    link.click();
    link.remove();
    // The download has started from the URL; free it a little later.
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });
  model.on("change:busy", update);
  model.on("change:description", update);
  model.on("change:disabled", update);
  model.on("change:tooltip", update);
  update();
}

export default { render };
