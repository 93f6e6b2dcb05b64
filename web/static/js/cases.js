// 差评 rectification cases on the supervisor page: the list of the supervisor's departments'
// cases (filters: state, department, overdue), and one case with its rating, its history, the
// replay of its recording and the form for its next step (the server checks every step).
import { $, el, errorText, fetchJSON, formatTime, loadDepartments, serviceDepartments } from './common.js';
import { departmentName, t } from './i18n.js';

const POLL_MS = 30000;
const STATES = ['opened', 'verified', 'rectified', 'explained', 'appealed', 'answered', 'closed'];
const state = { departments: [], cases: [], openId: null, loaded: false };

function visible() {
  return !$('cases').closest('[data-screen]')?.hidden;
}

function filters() {
  const params = new URLSearchParams();
  const st = $('cases-filter-state').value;
  const dept = $('cases-filter-department').value;
  if (st) params.set('state', st);
  if (dept) params.set('department', dept);
  if ($('cases-filter-overdue').checked) params.set('overdue', '1');
  return params.toString();
}

function showError(testid, err) {
  const box = $(testid);
  box.textContent = err ? errorText(err) : '';
  box.hidden = !err;
}

function dueCell(c) {
  const cell = el('td', { text: c.due });
  if (c.overdue) cell.append(' ', el('span', { className: 'badge badge-danger', testid: 'case-overdue', text: t('case_overdue') }));
  else if (c.near_due) cell.append(' ', el('span', { className: 'badge badge-warn', testid: 'case-near-due', text: t('case_near_due', { days: c.working_days_left }) }));
  return cell;
}

function render() {
  const body = $('cases-body');
  body.replaceChildren(...state.cases.map((c) => {
    const open = el('button', { className: 'btn btn-link btn-sm', testid: 'case-open', text: t('case_open') });
    open.type = 'button';
    open.addEventListener('click', () => openCase(c.id));
    const row = el('tr', { testid: 'case-row' },
      el('td', { text: c.id }), el('td', { text: c.ticket_number || '–' }),
      el('td', { text: departmentName(state.departments, c.department) }),
      el('td', { className: 'bad-rating', text: t(`rating_${c.score}`) }),
      el('td', { text: formatTime(c.opened_at) }), dueCell(c),
      el('td', { testid: 'case-state', text: t(`case_state_${c.state}`) }), el('td', {}, open));
    row.dataset.caseId = c.id;
    row.dataset.department = c.department;
    row.dataset.due = c.due;
    row.dataset.state = c.state;
    return row;
  }));
  $('cases-empty').hidden = state.cases.length > 0;
}

async function refresh() {
  try {
    const data = await fetchJSON(`/api/cases?${filters()}`);
    state.cases = data.cases;
    render();
    showError('cases-error', null);
  } catch (err) {
    showError('cases-error', err);
  }
}

function detail(term, value, testid = '') {
  return [el('dt', { text: t(term) }), el('dd', { testid, text: value })];
}

function renderCase(c) {
  state.openId = c.id;
  $('case-title').textContent = t('case_title', {
    id: c.id, department: departmentName(state.departments, c.department),
  });
  $('case-panel').dataset.caseId = c.id;
  $('case-panel').dataset.state = c.state;
  const reasons = c.reasons.map((r) => t(`reason_${r}`)).join('、') || '–';
  $('case-details').replaceChildren(
    ...detail('col_rating', `${c.score} · ${t(`rating_${c.score}`)}`, 'case-score'),
    ...detail('case_reasons', reasons), ...detail('case_comment', c.comment || '–'),
    ...detail('col_ticket', c.ticket_number || '–'),
    ...detail('case_col_due', c.due, 'case-due'),
    ...detail('case_col_state', t(`case_state_${c.state}`), 'case-state-text'),
    ...(c.resolution ? detail('case_resolution', t(`case_resolution_${c.resolution}`)) : []));
  const replay = $('case-replay');
  replay.hidden = !c.room_id;
  replay.onclick = () => document.dispatchEvent(new CustomEvent('yz:replay', { detail: c.room_id }));
  $('case-history').replaceChildren(...c.history.map((h) => {
    const who = h.who || t('case_system');
    const decision = h.decision ? `（${t(`case_decision_${h.decision}`)}）` : '';
    return el('li', { testid: 'case-history-item', text: `${formatTime(h.at)} · ${who} · ${t(`case_step_${h.step}`)}${decision} · ${h.text}` });
  }));
  const form = $('case-step-form');
  form.hidden = c.next_steps.length === 0;
  $('case-step').replaceChildren(...c.next_steps.map((s) => {
    const option = el('option', { text: t(`case_step_${s}`) });
    option.value = s;
    return option;
  }));
  $('case-text').value = '';
  syncDecision();
  showError('case-step-error', null);
  $('case-panel').hidden = false;
}

function syncDecision() {
  $('case-decision-label').hidden = $('case-step').value !== 'decide';
}

async function openCase(id) {
  try {
    renderCase((await fetchJSON(`/api/cases/${encodeURIComponent(id)}`)).case);
    $('case-panel').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  } catch (err) {
    showError('cases-error', err);
  }
}

async function submitStep(event) {
  event.preventDefault();
  const step = $('case-step').value;
  const body = { step, text: $('case-text').value };
  if (step === 'decide') body.decision = $('case-decision').value;
  $('case-step-submit').disabled = true;
  try {
    const data = await fetchJSON(`/api/cases/${encodeURIComponent(state.openId)}/steps`, { method: 'POST', body });
    renderCase(data.case);
    await refresh();
  } catch (err) {
    showError('case-step-error', err);
  } finally {
    $('case-step-submit').disabled = false;
  }
}

async function start() {
  if (state.loaded || !visible()) return;
  state.loaded = true;
  state.departments = await loadDepartments();
  const stateSelect = $('cases-filter-state');
  stateSelect.replaceChildren(...['', 'open', ...STATES].map((s) => {
    const option = el('option', { text: s ? t(`case_state_${s}`) : t('cases_all') });
    option.value = s;
    return option;
  }));
  $('cases-filter-department').replaceChildren(
    el('option', { text: t('cases_all') }),
    ...serviceDepartments(state.departments).map((d) => {
      const option = el('option', { text: departmentName(state.departments, d.id) });
      option.value = d.id;
      return option;
    }));
  $('cases-filter-department').firstChild.value = '';
  for (const id of ['cases-filter-state', 'cases-filter-department', 'cases-filter-overdue']) {
    $(id).addEventListener('change', refresh);
  }
  $('cases-refresh').addEventListener('click', refresh);
  $('case-close').addEventListener('click', () => { $('case-panel').hidden = true; state.openId = null; });
  $('case-step').addEventListener('change', syncDecision);
  $('case-step-form').addEventListener('submit', submitStep);
  await refresh();
  setInterval(() => { if (visible()) refresh(); }, POLL_MS);
}

// The page shows its desk once the supervisor is signed in (supervisor.js): start then.
const watcher = setInterval(() => {
  if (state.loaded) clearInterval(watcher);
  else start();
}, 500);
start();
