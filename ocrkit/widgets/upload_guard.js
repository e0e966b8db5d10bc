// Checks the files chosen in a FileUpload before their bytes leave the browser.
// It reports every chosen file (name and size) to Python, and removes files over
// the size limit from the upload, so that no oversize message reaches the server,
// which would drop it without telling anyone.

async function initialize({ model }) {
  const reference = String(model.get("upload") || "");
  const uploadId = reference.replace(/^IPY_MODEL_/, "");
  if (!uploadId) {
    return;
  }
  const upload = await model.widget_manager.get_model(uploadId);
  let filtering = false;

  function onChange() {
    if (filtering) {
      return;
    }
    const files = upload.get("value") || [];
    if (!files.length) {
      return;
    }
    const limit = model.get("limit_bytes");
    model.send({
      event: "selected",
      files: files.map((file) => ({ name: file.name, size: file.size })),
    });
    const kept = limit > 0 ? files.filter((file) => file.size <= limit) : files;
    if (kept.length !== files.length) {
      // The FileUpload view sends its value right after this event, so the
      // value it sends is the filtered one.
      filtering = true;
      try {
        upload.set("value", kept);
      } finally {
        filtering = false;
      }
    }
  }

  upload.on("change:value", onChange);
  return () => upload.off("change:value", onChange);
}

export default { initialize };
