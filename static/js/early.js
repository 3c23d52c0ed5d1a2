// Runs before the page paints (not deferred): lets the CSS collapse the phone menu only where scripts run.
document.documentElement.classList.add("js");
