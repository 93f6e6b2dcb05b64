// The kiosk's interpreter request (手语 or a language): the applicant picks a skill on the notice
// screen, the ticket names its pool (`interp-<skill>`, signaling/skills.py) in `also`, and when
// the call connects the pool is rung. For sign language the interpreter's tile is the large one.
import { $ } from './common.js';
import { departmentName, t } from './i18n.js';
import { Role } from './states.js';

const POOL_PREFIX = 'interp-';
// Sign language is watched, not only heard: its interpreter takes the main (large) picture.
const PINNED_SKILLS = new Set(['sign']);

export class InterpreterChoice {
  constructor() {
    this.skill = null;
  }

  // Show the pools the server lists (departments with a `skill`), none chosen; hide the note.
  reset(departments) {
    this.skill = null;
    $('interpreter-unavailable').hidden = true;
    const pools = (departments || []).filter((d) => d.skill);
    const row = $('interpreter-choices');
    row.hidden = !pools.length;
    const list = row.querySelector('.interpreter-list');
    list.replaceChildren();
    for (const pool of pools) {
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'btn btn-secondary interpreter-btn';
      btn.dataset.testid = 'interpreter-request';
      btn.dataset.skill = pool.skill;
      btn.setAttribute('aria-pressed', 'false');
      btn.textContent = departmentName(departments, pool.id);
      btn.addEventListener('click', () => this.choose(pool.skill === this.skill ? null : pool.skill));
      list.append(btn);
    }
  }

  choose(skill) {
    this.skill = skill;
    for (const btn of $('interpreter-choices').querySelectorAll('[data-skill]')) {
      btn.setAttribute('aria-pressed', String(btn.dataset.skill === skill));
    }
  }

  // What ticket:create's `also` gets.
  also() {
    return this.skill ? [POOL_PREFIX + this.skill] : [];
  }

  // Which role the call's main picture shows first.
  pinnedRole() {
    return PINNED_SKILLS.has(this.skill) ? Role.INTERPRETER : Role.STAFF;
  }

  // interpreter:unavailable: nobody with the skill is on duty; the call goes on without.
  unavailable(msg, departments) {
    const note = $('interpreter-unavailable');
    note.textContent = t('interpreter_unavailable', {
      skill: departmentName(departments, POOL_PREFIX + ((msg && msg.skill) || this.skill || '')),
    });
    note.hidden = false;
  }
}
