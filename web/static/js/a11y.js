// Screen changes on the kiosk for keyboard and screen-reader users: the screen that appears takes
// the focus (its heading) and its heading is said through a polite live region.

// Polite, visually hidden: a screen reader says it after what it is saying now.
function liveRegion() {
  const region = document.createElement('p');
  region.className = 'visually-hidden';
  region.dataset.testid = 'a11y-status';
  region.setAttribute('role', 'status');
  region.setAttribute('aria-live', 'polite');
  document.querySelector('main').append(region);
  return region;
}

// Focus left on a control of a screen that is now hidden falls back to the body, and the next Tab
// would start again from the top bar: give it to the new screen's heading instead.
function focusLost(screen) {
  const active = document.activeElement;
  return !active || active === document.body || !active.checkVisibility() || !screen.contains(active);
}

function screenShown(screen, region) {
  const heading = screen.querySelector('h1, h2');
  const target = heading && heading.checkVisibility() ? heading : screen;
  if (focusLost(screen)) {
    target.tabIndex = -1;
    target.focus({ preventScroll: true });
  }
  // Emptied first so that the same heading twice (back to the start screen) is said again.
  region.textContent = '';
  const text = (heading ? heading.textContent : screen.textContent).trim().replace(/\s+/g, ' ');
  requestAnimationFrame(() => { region.textContent = text.slice(0, 200); });
}

// Watch every [data-screen]: called once at page start.
export function watchScreens() {
  const region = liveRegion();
  const observer = new MutationObserver((changes) => {
    for (const change of changes) {
      const screen = change.target;
      if (change.oldValue !== null && !screen.hidden) screenShown(screen, region);
    }
  });
  for (const screen of document.querySelectorAll('[data-screen]')) {
    observer.observe(screen, { attributes: true, attributeFilter: ['hidden'], attributeOldValue: true });
  }
}
