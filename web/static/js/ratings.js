// 好差评 of a 会商 at the kiosk: one row of five levels per department that took part
// (rating-<dept>-<n>), the reasons to tick for the chosen level, and a comment; the page sends
// them together with rating-submit (rating:submit's `ratings`).
import { el } from './common.js';
import { departmentName, t } from './i18n.js';

const LEVELS = [5, 4, 3, 2, 1];

export class DepartmentRatings {
  // departments: [{department}] from rating:options; reasons: {bad: [...], good: [...]}.
  constructor(container, { departments, reasons, commentMax, names, onChange }) {
    this.container = container;
    this.reasons = reasons;
    this.commentMax = commentMax;
    this.names = names;
    this.onChange = onChange;
    this.chosen = new Map(); // department -> {score, reasons: Set, comment}
    container.replaceChildren(...departments.map((d) => this.row(d.department)));
  }

  row(dept) {
    const grid = el('div', { className: 'rating-grid' });
    grid.setAttribute('role', 'radiogroup');
    const reasons = el('div', { className: 'rating-reasons', testid: `rating-${dept}-reasons` });
    const comment = el('textarea', { className: 'rating-comment', testid: `rating-${dept}-comment` });
    comment.maxLength = this.commentMax;
    comment.rows = 2;
    comment.placeholder = t('rating_comment_placeholder');
    comment.addEventListener('input', () => {
      const entry = this.chosen.get(dept);
      if (entry) entry.comment = comment.value;
    });
    for (const n of LEVELS) {
      const btn = el('button', { className: `btn rating-btn rating-${n}`, testid: `rating-${dept}-${n}` },
        el('span', { className: 'rating-stars', text: '★'.repeat(n) + '☆'.repeat(5 - n) }),
        el('span', { text: t(`rating_${n}`) }));
      btn.type = 'button';
      btn.setAttribute('role', 'radio');
      btn.setAttribute('aria-checked', 'false');
      btn.addEventListener('click', () => this.choose(dept, n, grid, reasons, comment));
      grid.append(btn);
    }
    comment.hidden = true;
    return el('section', { className: 'rating-department', testid: `rating-${dept}` },
      el('h3', { text: departmentName(this.names, dept) }), grid, reasons, comment);
  }

  choose(dept, score, grid, reasons, comment) {
    this.chosen.set(dept, { score, reasons: new Set(), comment: comment.value });
    for (const btn of grid.children) {
      const on = btn.dataset.testid === `rating-${dept}-${score}`;
      btn.classList.toggle('selected', on);
      btn.setAttribute('aria-checked', String(on));
    }
    // The reasons of the level's polarity (both for 3), as signaling/ratings.py allows them.
    const codes = [...(score <= 3 ? this.reasons.bad : []), ...(score >= 3 ? this.reasons.good : [])];
    reasons.replaceChildren(...codes.map((code) => {
      const box = el('input', { testid: `rating-${dept}-reason-${code}` });
      box.type = 'checkbox';
      box.addEventListener('change', () => {
        const entry = this.chosen.get(dept);
        if (box.checked) entry.reasons.add(code);
        else entry.reasons.delete(code);
      });
      return el('label', { className: 'rating-reason' }, box, el('span', { text: t(`reason_${code}`) }));
    }));
    comment.hidden = false;
    this.onChange(this.chosen.size > 0);
  }

  // The payload's `ratings`: the departments given a level.
  values() {
    return [...this.chosen].map(([department, v]) => ({
      department, score: v.score, reasons: [...v.reasons], comment: v.comment.trim(),
    }));
  }
}
