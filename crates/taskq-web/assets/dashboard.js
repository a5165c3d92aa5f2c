// Live refresh for the taskq dashboard: when the box in the header is
// ticked (remembered in this browser), the page's content is fetched
// again every 5 seconds and swapped in. Everything else works without
// this script.
(function () {
  "use strict";
  var box = document.getElementById("live");
  var main = document.getElementById("main");
  if (!box || !main) return;
  box.parentElement.hidden = false;
  box.checked = localStorage.getItem("taskq-live") === "on";
  var timer = null;
  function refresh() {
    // Leave a page alone while someone is typing into one of its forms.
    if (document.activeElement && main.contains(document.activeElement) &&
        /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) return;
    fetch(location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (fresh) main.replaceChildren.apply(main, Array.from(fresh.childNodes));
      })
      .catch(function () {});
  }
  function apply() {
    localStorage.setItem("taskq-live", box.checked ? "on" : "off");
    if (timer) clearInterval(timer);
    timer = box.checked ? setInterval(refresh, 5000) : null;
  }
  box.addEventListener("change", apply);
  apply();
})();
