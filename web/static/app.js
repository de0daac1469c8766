// The only script: print buttons and the item picker. Everything works without it.
(function () {
  // An item stays when every word typed is part of one of its keys, or is spelled, in
  // order, by the characters of its name or the letters of its pinyin initials.
  function spells(word, text) {
    var at = 0;
    for (var i = 0; i < text.length && at < word.length; i++) {
      if (text[i] === word[at]) { at++; }
    }
    return at === word.length;
  }
  function matches(link, words) {
    var name = link.dataset.name || "";
    var initials = link.dataset.initials || "";
    var keys = [name.toLowerCase(), initials, link.dataset.pinyin || "", link.dataset.words || ""].join(" ");
    return words.every(function (w) {
      return keys.indexOf(w) >= 0 || spells(w, name) || spells(w, initials);
    });
  }
  function picker(input) {
    var box = input.closest(".picker");
    var links = Array.prototype.slice.call(box.querySelectorAll(".pick-item"));
    var none = box.querySelector("#pick-none");
    function visible() { return links.filter(function (a) { return !a.closest("li").hidden; }); }
    function filter() {
      var words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var seen = {};
      links.forEach(function (a) {
        var ok = !words.length || matches(a, words);
        // an item shown under 本中心常办 is not shown twice while filtering
        var code = a.getAttribute("href");
        if (words.length && ok && seen[code]) { ok = false; }
        if (ok) { seen[code] = true; }
        a.closest("li").hidden = !ok;
      });
      box.querySelectorAll(".pick-group").forEach(function (g) {
        g.hidden = !g.querySelector("li:not([hidden])");
      });
      if (none) { none.hidden = visible().length > 0; }
    }
    input.addEventListener("input", filter);
    input.addEventListener("keydown", function (e) {
      var shown = visible();
      if (e.key === "Enter") {
        e.preventDefault();
        if (shown.length) { shown[0].click(); }
      } else if (e.key === "ArrowDown" && shown.length) {
        e.preventDefault();
        shown[0].focus();
      }
    });
    box.addEventListener("keydown", function (e) {
      if (!e.target.classList || !e.target.classList.contains("pick-item")) { return; }
      var shown = visible();
      var at = shown.indexOf(e.target);
      if (e.key === "ArrowDown" && at < shown.length - 1) { e.preventDefault(); shown[at + 1].focus(); }
      if (e.key === "ArrowUp") { e.preventDefault(); (at > 0 ? shown[at - 1] : input).focus(); }
    });
  }
  function init() {
    if (window.__tongbanReady) { return; }
    window.__tongbanReady = true;
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    var filter = document.getElementById("item-filter");
    if (filter) { picker(filter); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
