// A preview of the pages picked in a file field, before the form is sent: a thumbnail for an
// image, the name and a page symbol for a PDF. The form works without it.
(function () {
  function kb(size) {
    return size >= 1048576 ? (size / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(size / 1024)) + " KB";
  }
  function show(input) {
    var box = input.parentNode.querySelector(".preview");
    if (!box) { return; }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    Array.prototype.forEach.call(input.files || [], function (file, i) {
      var item = document.createElement("span");
      item.className = "preview-item";
      item.title = file.name;
      if (file.type === "image/jpeg" || file.type === "image/png") {
        var img = document.createElement("img");
        img.className = "thumb";
        img.alt = file.name;
        var reader = new FileReader();
        reader.onload = function () { img.src = reader.result; };
        reader.readAsDataURL(file);
        item.appendChild(img);
      } else {
        var icon = document.createElement("span");
        icon.className = "pdf-icon";
        icon.textContent = file.type === "application/pdf" ? "PDF" : "?";
        item.appendChild(icon);
      }
      var label = document.createElement("small");
      label.textContent = (i + 1) + ". " + file.name + " · " + kb(file.size);
      item.appendChild(label);
      box.appendChild(item);
    });
  }
  document.querySelectorAll("input.scan[type=file]").forEach(function (input) {
    input.addEventListener("change", function () { show(input); });
  });
})();
