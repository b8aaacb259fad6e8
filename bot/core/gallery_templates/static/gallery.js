// Copy-to-clipboard for the entry page: the page's only script, a file of its own because the
// Content-Security-Policy allows no inline script. Without it the prompt is still selectable.
"use strict";
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const source = document.getElementById(button.dataset.copy);
  const status = button.nextElementSibling;
  if (!source || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      status.textContent = "Copied";
    } catch {
      status.textContent = "Could not copy: select the prompt and copy it yourself";
    }
  });
});
