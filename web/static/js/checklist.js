// The 一次性告知单 on the pages: the desk's side panel (checklist-panel: pick a matter of my
// department, tick and edit its materials, add notes, sign my part; other departments' parts read
// only), and the kiosk's view (checklist-view: the live notice, then the sealed one with its QR).
// The server holds the document and checks every edit (docs/protocol.md, notice:*).
import { $, el, fetchJSON, showError, svgImageSource } from './common.js';
import { formatMoment, t } from './i18n.js';

const FORM_KEYS = { original: 'checklist_form_original', copy: 'checklist_form_copy', either: 'checklist_form_either' };

function materialLabel(m) {
  const parts = [m.name, t(FORM_KEYS[m.form] || 'checklist_form_either'), t('checklist_count', { n: m.count })];
  if (m.notes) parts.push(m.notes);
  return parts.join(' · ');
}

function signatureText(part) {
  const sig = part.signature;
  if (!sig) return t('checklist_unsigned');
  const at = formatMoment(sig.at);
  return t('checklist_signed_by', { name: sig.name, dept: part.department_name || sig.department, at });
}

// A part of the notice, read only: its matters with the ticked materials, notes and signature.
function readOnlyPart(part) {
  const section = el('section', { className: 'checklist-part', testid: 'checklist-part' },
    el('h3', { className: 'checklist-dept', text: part.department_name || part.department }));
  section.dataset.department = part.department;
  for (const matter of part.matters) {
    const item = el('div', { className: 'checklist-item', testid: 'checklist-item' },
      el('h4', { text: matter.name }));
    item.dataset.matter = matter.matter_id;
    const list = el('ul', { className: 'checklist-materials' });
    for (const m of matter.materials) {
      if (m.checked) list.append(el('li', { testid: 'checklist-material', text: materialLabel(m) }));
    }
    item.append(list);
    section.append(item);
  }
  if (part.notes.length) {
    section.append(el('ul', { className: 'checklist-notes' },
      ...part.notes.map((n) => el('li', { testid: 'checklist-note-line', text: n }))));
  }
  const sig = el('p', { className: 'checklist-signature', testid: 'checklist-signature', text: signatureText(part) });
  sig.dataset.signed = String(Boolean(part.signature));
  section.append(sig);
  return section;
}

// The desk's panel. `room` is the RoomSession (its notice events and its participants).
export class ChecklistPanel {
  constructor(room) {
    this.room = room;
    this.doc = null;
    this.department = null;
    this.matters = [];
    this.panel = $('checklist-panel');
    this.list = $('checklist-list');
  }

  // The department my room token is for (the server decides; the participants list says it).
  myDepartment() {
    const me = this.room.participants.find((p) => p.participant_id === this.room.participantId);
    return me && me.role === 'staff' ? me.department || null : null;
  }

  async refreshMatters() {
    const dept = this.myDepartment();
    if (!dept || dept === this.department) return;
    this.department = dept;
    try {
      const answer = await fetchJSON(`/api/matters?department=${encodeURIComponent(dept)}`);
      this.matters = answer.matters || [];
    } catch (err) {
      this.matters = [];
      showError(err);
    }
    this.render();
  }

  show(doc) {
    if (doc && this.doc && doc.room_id === this.doc.room_id && doc.revision < this.doc.revision) return;
    this.doc = doc;
    this.render();
  }

  myPart() {
    return (this.doc && this.department && this.doc.parts[this.department]) || null;
  }

  async edit(event, payload) {
    try {
      const answer = await this.room.editNotice(event, payload);
      this.show(answer.notice);
    } catch (err) {
      showError(err);
    }
  }

  render() {
    if (!this.panel) return;
    this.panel.hidden = this.room.closed || !this.department;
    const mine = this.myPart();
    const signed = Boolean(mine && mine.signature);
    const sealed = Boolean(this.doc && this.doc.sealed_at);
    const select = $('checklist-matter');
    const picked = new Set(mine ? mine.matters.map((m) => m.matter_id) : []);
    const previous = select.value;
    select.replaceChildren(el('option', { text: t('checklist_pick') }));
    select.firstChild.value = '';
    for (const matter of this.matters) {
      if (picked.has(matter.id)) continue;
      const option = el('option', { text: matter.name });
      option.value = matter.id;
      select.append(option);
    }
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
    const frozen = signed || sealed;
    for (const id of ['checklist-matter', 'checklist-add', 'checklist-note', 'checklist-note-add']) $(id).disabled = frozen;
    $('checklist-sign').disabled = frozen || !mine || !mine.matters.length;
    $('checklist-sign').hidden = signed;
    const status = $('checklist-status');
    status.textContent = signed ? t('checklist_locked') : '';
    status.hidden = !signed;
    this.renderList(frozen);
  }

  renderList(frozen) {
    // Keep what I am typing across a re-render (another desk's change comes in meanwhile).
    const focused = document.activeElement;
    const focusKey = focused && this.list.contains(focused) ? focused.dataset.key : null;
    const typed = focusKey ? focused.value : null;
    this.list.replaceChildren();
    const parts = this.doc ? Object.values(this.doc.parts) : [];
    const mine = parts.find((p) => p.department === this.department);
    if (mine) this.list.append(frozen ? readOnlyPart(mine) : this.editablePart(mine));
    for (const part of parts) {
      if (part !== mine && part.matters.length) this.list.append(readOnlyPart(part));
    }
    if (!this.list.childElementCount) this.list.append(el('p', { className: 'muted small', text: t('checklist_empty') }));
    if (focusKey) {
      const again = this.list.querySelector(`[data-key="${focusKey}"]`);
      if (again) {
        again.value = typed;
        again.focus();
      }
    }
  }

  editablePart(part) {
    const section = el('section', { className: 'checklist-part checklist-mine', testid: 'checklist-part' },
      el('h3', { className: 'checklist-dept', text: part.department_name || part.department }));
    section.dataset.department = part.department;
    for (const matter of part.matters) {
      const remove = el('button', { className: 'btn btn-ghost btn-sm', testid: 'checklist-remove', text: t('checklist_remove') });
      remove.type = 'button';
      remove.addEventListener('click', () => this.edit('notice:remove', { matter_id: matter.matter_id }));
      const item = el('div', { className: 'checklist-item', testid: 'checklist-item' },
        el('div', { className: 'checklist-item-head' }, el('h4', { text: matter.name }), remove));
      item.dataset.matter = matter.matter_id;
      const list = el('ul', { className: 'checklist-materials' });
      matter.materials.forEach((m, index) => {
        const box = el('input', { testid: 'checklist-material-check' });
        box.type = 'checkbox';
        box.checked = m.checked;
        box.setAttribute('aria-label', t('a11y_material_keep', { name: m.name }));
        box.addEventListener('change', () => this.edit('notice:material', { matter_id: matter.matter_id, item: index, checked: box.checked }));
        const text = el('input', { className: 'checklist-text', testid: 'checklist-material-text' });
        text.type = 'text';
        text.maxLength = 200;
        text.value = m.name;
        text.dataset.key = `${matter.matter_id}:${index}`;
        text.setAttribute('aria-label', t('a11y_material_name', { name: m.name }));
        text.addEventListener('change', () => {
          const value = text.value.trim();
          if (value && value !== m.name) this.edit('notice:material', { matter_id: matter.matter_id, item: index, text: value });
        });
        const detail = el('span', { className: 'muted small', text: `${t(FORM_KEYS[m.form] || 'checklist_form_either')} · ${t('checklist_count', { n: m.count })}${m.notes ? ` · ${m.notes}` : ''}` });
        const row = el('li', { testid: 'checklist-material' }, box, text, detail);
        row.dataset.checked = String(m.checked);
        list.append(row);
      });
      const extra = el('input', { className: 'checklist-text', testid: 'checklist-material-new' });
      extra.type = 'text';
      extra.maxLength = 200;
      extra.placeholder = t('checklist_material_new');
      extra.dataset.key = `${matter.matter_id}:new`;
      extra.addEventListener('keydown', (event) => {
        if (event.key !== 'Enter') return;
        event.preventDefault();
        const value = extra.value.trim();
        if (!value) return;
        extra.value = '';
        this.edit('notice:material', { matter_id: matter.matter_id, text: value });
      });
      list.append(el('li', {}, extra));
      item.append(list);
      section.append(item);
    }
    if (part.notes.length) {
      section.append(el('ul', { className: 'checklist-notes' },
        ...part.notes.map((n) => el('li', { testid: 'checklist-note-line', text: n }))));
    }
    return section;
  }
}

// The desk's panel controls, wired once per page; `current()` is the ChecklistPanel of the call
// in progress, or null.
export function initChecklistControls(current) {
  if (!$('checklist-panel')) return;
  $('checklist-add').addEventListener('click', () => {
    const panel = current();
    const matterId = $('checklist-matter').value;
    if (panel && matterId) panel.edit('notice:add', { matter_id: matterId });
  });
  $('checklist-note-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const panel = current();
    const text = $('checklist-note').value.trim();
    if (!panel || !text) return;
    $('checklist-note').value = '';
    panel.edit('notice:note', { text });
  });
  $('checklist-sign').addEventListener('click', () => {
    const panel = current();
    if (panel) panel.edit('notice:sign', {});
  });
}

// How long the kiosk keeps asking for the sealed notice, and on which errors.
const SEALED_WAIT_MS = 30000;
const RETRY_SEALED = new Set(['bad_state', 'network', 'timeout', 'unavailable', 'limit']);

// The kiosk's view: the live notice during the call, then the sealed one with its QR code.
export class ChecklistView {
  constructor() {
    this.view = $('checklist-view');
    this.doc = null;
    this.sealed = null;
    this.asking = null; // the ticket whose sealed notice is being asked for
  }

  reset() {
    this.doc = null;
    this.sealed = null;
    this.asking = null;
    this.render();
  }

  show(doc) {
    if (this.sealed) return;
    if (doc && this.doc && doc.room_id === this.doc.room_id && doc.revision < this.doc.revision) return;
    this.doc = doc;
    this.render();
  }

  // After the call: ask for the sealed notice with the ticket's token, and show it with the QR
  // code of its read-only page. The server may still be sealing it (bad_state), and a hall's
  // network or a busy server may fail a request: both are asked again for a while.
  async fetchSealed(auth) {
    if (!this.view || this.sealed || !auth || this.asking === auth.ticket_id) return;
    this.asking = auth.ticket_id;
    const giveUpAt = Date.now() + SEALED_WAIT_MS;
    for (let delay = 500; ; delay = Math.min(delay * 1.5, 3000)) {
      try {
        const answer = await fetchJSON('/api/notice-link', { method: 'POST', body: { ticket_id: auth.ticket_id, token: auth.token } });
        if (this.asking !== auth.ticket_id) return; // reset meanwhile: another applicant now
        if (!answer.notice) {
          this.reset();
          return;
        }
        this.sealed = answer;
        this.doc = answer.notice.document;
        this.render();
        return;
      } catch (err) {
        if (this.asking !== auth.ticket_id) return;
        const transient = RETRY_SEALED.has(err.code) || err.status >= 500;
        if (!transient || Date.now() + delay > giveUpAt) {
          console.warn('sealed notice not fetched:', err.code);
          return;
        }
        await new Promise((resolve) => { setTimeout(resolve, delay); });
      }
    }
  }

  render() {
    if (!this.view) return;
    const parts = this.doc ? Object.values(this.doc.parts).filter((p) => p.matters.length) : [];
    this.view.hidden = !parts.length;
    // The page makes room for it, so it never covers the call or the rating.
    document.body.classList.toggle('has-checklist', !this.view.hidden);
    this.view.dataset.sealed = String(Boolean(this.sealed));
    const body = $('checklist-view-list');
    body.replaceChildren(...parts.map(readOnlyPart));
    $('checklist-view-heading').textContent = t(this.sealed ? 'checklist_sealed_heading' : 'checklist_heading');
    const qr = $('checklist-qr');
    qr.hidden = !this.sealed;
    if (this.sealed) {
      qr.dataset.url = this.sealed.url;
      qr.href = this.sealed.url;
      $('checklist-qr-image').src = svgImageSource(this.sealed.qr_svg);
    } else {
      delete qr.dataset.url;
      qr.removeAttribute('href');
    }
  }
}
