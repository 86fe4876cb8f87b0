/* Pre-select the browser's own time zone; without JavaScript the list still works.
   A file of its own: the Content-Security-Policy allows no inline script. */
try {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll("select.timezone").forEach(function (select) {
    if (!select.value && select.querySelector('option[value="' + zone + '"]')) select.value = zone;
  });
} catch (e) {}
