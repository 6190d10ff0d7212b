// The release upload form. A browser sends a folder's files under their base names only
// (Django keeps no directories either), so this records each file's path inside the folder
// (webkitRelativePath) in the hidden `paths` field, in the order the files are sent. It
// also drops files that are not YAML, so a folder's images or archives are not uploaded.
// Without this script the server reads base names, and says so if two of them collide.
(function () {
  "use strict";

  var YAML = /\.ya?ml$/i;

  function record(input) {
    var form = input.form;
    var hidden = form && form.querySelector("input[data-release-paths]");
    if (!hidden) return;
    var all = Array.prototype.slice.call(input.files || []);
    var yaml = all.filter(function (file) { return YAML.test(file.name); });
    var sent = all;
    if (yaml.length && yaml.length < all.length && window.DataTransfer) {
      try {
        var transfer = new DataTransfer();
        yaml.forEach(function (file) { transfer.items.add(file); });
        input.files = transfer.files;
        sent = yaml;
      } catch (e) {
        sent = all;  // this browser cannot replace a file list: send everything, the server skips the rest
      }
    }
    var paths = sent.map(function (file) { return file.webkitRelativePath || file.name; });
    hidden.value = JSON.stringify(paths);
    var note = form.querySelector("[data-release-picked]");
    if (note) {
      note.textContent = yaml.length + " YAML file" + (yaml.length === 1 ? "" : "s") + " of " + all.length + " in the folder.";
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("input[type=file][data-release-folder]")) record(event.target);
  });
})();
