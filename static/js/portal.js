// Small behaviours of every page. They live here, not in inline handlers or <script>
// blocks, because the Content-Security-Policy runs scripts from this site's files only.
(function () {
  "use strict";

  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    var text = source.tagName === "INPUT" ? source.value : source.innerText;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {  // plain-HTTP hosts other than localhost have no clipboard API
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      if (document.execCommand("copy")) done();
      area.remove();
    }
  }

  document.addEventListener("click", function (event) {
    // Copy buttons: data-copy names the element whose value or text is copied.
    var button = event.target.closest("[data-copy]");
    if (button) copy(button);
    // A secret or a link shown once: one click selects all of it.
    var field = event.target.closest("input[data-select-on-click]");
    if (field) field.select();
  });

  // A select that submits its form as soon as it changes (the team switcher).
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-submit-on-change]")) event.target.form.submit();
  });
})();
