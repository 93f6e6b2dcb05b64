// The admin page's matter catalogue (事项库) section: a department's matters, and the form that
// creates or edits one with its materials (rows added and removed). The page checks what it can
// before sending; the rules are the server's (/api/matters, /api/admin/matters/<id>).
import { $, el, fetchJSON, serviceDepartments, YzError } from './common.js';
import { departmentName, t } from './i18n.js';

const MATTER_ID = /^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const FORMS = ['original', 'copy', 'either'];
const MAX_MATERIALS = 50;

const section = {
  departments: () => [],
  onAuthError: () => false,
  chosen: '', // the department listed
  matters: [],
  editing: null, // the matter id being edited, or null for a new one
};

function errorText(err) {
  return err instanceof YzError ? err.display : t('err_generic');
}

function showListError(text) {
  const box = $('matters-error');
  box.textContent = text;
  box.hidden = !text;
}

function showFormError(text) {
  const box = $('matter-error');
  box.textContent = text;
  box.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------
function renderDepartmentChoice() {
  const departments = serviceDepartments(section.departments());
  if (!section.chosen && departments.length) section.chosen = departments[0].id;
  for (const select of [$('matter-department'), $('matter-dept')]) {
    const value = select.value || section.chosen;
    select.replaceChildren(...departments.map((dept) => {
      const option = el('option', { text: departmentName(departments, dept.id) });
      option.value = dept.id;
      return option;
    }));
    select.value = value;
  }
  $('matter-department').value = section.chosen;
}

function materialsText(matter) {
  return matter.materials.map((m) => m.name).join('、') || '—';
}

function matterRow(matter) {
  const row = el('tr', { testid: 'matter-row' });
  row.dataset.matterId = matter.id;
  const edit = el('button', { className: 'btn btn-sm btn-secondary', testid: 'matter-edit', text: t('matter_edit') });
  edit.type = 'button';
  edit.addEventListener('click', () => openForm(matter));
  const remove = el('button', {
    className: 'btn btn-sm btn-secondary account-danger', testid: 'matter-delete', text: t('matter_delete'),
  });
  remove.type = 'button';
  remove.addEventListener('click', () => deleteMatter(matter));
  const name = el('td', { className: 'matter-name' },
    el('span', { testid: 'matter-name-cell', text: matter.name }),
    el('span', { className: 'muted small matter-id', text: matter.id }));
  row.append(
    name,
    el('td', { className: 'matter-materials-cell', testid: 'matter-materials-cell', text: materialsText(matter) }),
    el('td', { text: matter.fee || '—' }),
    el('td', { text: matter.time_limit || '—' }),
    el('td', { testid: 'matter-online-cell', text: matter.online ? t('matter_online_yes') : t('matter_online_no') }),
    el('td', { className: 'account-actions-cell' }, el('div', { className: 'account-actions' }, edit, remove)),
  );
  return row;
}

function renderMatters() {
  const body = $('matter-list');
  body.replaceChildren(...section.matters.map(matterRow));
  if (!section.matters.length) {
    const cell = el('td', { className: 'empty', text: t('matters_empty') });
    cell.colSpan = 6;
    body.append(el('tr', {}, cell));
  }
}

export async function loadMatters() {
  renderDepartmentChoice();
  const dept = section.chosen;
  if (!dept) {
    section.matters = [];
    renderMatters();
    return;
  }
  try {
    const data = await fetchJSON(`/api/matters?department=${encodeURIComponent(dept)}`);
    if (section.chosen !== dept) return;
    section.matters = data.matters || [];
    showListError('');
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  renderMatters();
}

async function deleteMatter(matter) {
  if (!window.confirm(t('matter_confirm_delete', { name: matter.name }))) return;
  showListError('');
  try {
    await fetchJSON(`/api/admin/matters/${encodeURIComponent(matter.id)}`, { method: 'DELETE' });
    if (section.editing === matter.id) closeForm();
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  await loadMatters();
}

// ---------------------------------------------------------------------------------------------
// The form, with one row per material
// ---------------------------------------------------------------------------------------------
function materialRow(material = { name: '', form: 'original', count: 1, notes: '' }) {
  const row = el('div', { className: 'matter-material', testid: 'matter-material-row' });
  const name = el('input', { testid: 'matter-material-name' });
  name.type = 'text';
  name.maxLength = 64;
  name.value = material.name;
  name.placeholder = t('matter_material_name');
  name.setAttribute('aria-label', t('matter_material_name'));
  const form = el('select', { testid: 'matter-material-form' });
  form.setAttribute('aria-label', t('matter_material_form'));
  form.replaceChildren(...FORMS.map((value) => {
    const option = el('option', { text: t(`matter_form_${value}`) });
    option.value = value;
    return option;
  }));
  form.value = FORMS.includes(material.form) ? material.form : 'original';
  const count = el('input', { testid: 'matter-material-count' });
  count.type = 'number';
  count.min = '1';
  count.max = '99';
  count.value = String(material.count);
  count.setAttribute('aria-label', t('matter_material_count'));
  const notes = el('input', { testid: 'matter-material-notes' });
  notes.type = 'text';
  notes.maxLength = 200;
  notes.value = material.notes;
  notes.placeholder = t('matter_material_notes');
  notes.setAttribute('aria-label', t('matter_material_notes'));
  const remove = el('button', {
    className: 'btn btn-sm btn-secondary', testid: 'matter-material-remove', text: t('matter_material_remove'),
  });
  remove.type = 'button';
  remove.addEventListener('click', () => row.remove());
  row.append(name, form, count, notes, remove);
  return row;
}

function addMaterial() {
  const list = $('matter-materials');
  if (list.childElementCount >= MAX_MATERIALS) {
    showFormError(t('matter_too_many_materials', { max: MAX_MATERIALS }));
    return;
  }
  const row = materialRow();
  list.append(row);
  $('matter-material-name', row).focus();
}

function openForm(matter = null) {
  section.editing = matter ? matter.id : null;
  renderDepartmentChoice();
  $('matter-form-heading').textContent = matter
    ? t('matter_edit_heading', { name: matter.name }) : t('matter_new_heading');
  $('matter-id').value = matter ? matter.id : `${section.chosen}-`;
  $('matter-id').readOnly = Boolean(matter);
  $('matter-dept').value = matter ? matter.department : section.chosen;
  $('matter-name').value = matter ? matter.name : '';
  $('matter-legal-basis').value = matter ? matter.legal_basis : '';
  $('matter-fee').value = matter ? matter.fee : '';
  $('matter-time-limit').value = matter ? matter.time_limit : '';
  $('matter-online').checked = Boolean(matter && matter.online);
  $('matter-materials').replaceChildren(...(matter ? matter.materials : []).map(materialRow));
  showFormError('');
  $('matter-saved').hidden = true;
  $('matter-form').hidden = false;
  $(matter ? 'matter-name' : 'matter-id').focus();
}

function closeForm() {
  section.editing = null;
  $('matter-form').hidden = true;
}

// What the form holds, or the first thing wrong with it (in the page language).
function readForm() {
  const id = $('matter-id').value.trim();
  if (!MATTER_ID.test(id)) return { error: t('matter_bad_id') };
  const name = $('matter-name').value.trim();
  if (!name) return { error: t('matter_missing_name') };
  const materials = [];
  const seen = new Set();
  for (const row of $('matter-materials').children) {
    const material = {
      name: $('matter-material-name', row).value.trim(),
      form: $('matter-material-form', row).value,
      count: Number($('matter-material-count', row).value),
      notes: $('matter-material-notes', row).value.trim(),
    };
    const number = materials.length + 1;
    if (!material.name) return { error: t('matter_material_missing_name', { n: number }) };
    if (!Number.isInteger(material.count) || material.count < 1 || material.count > 99) {
      return { error: t('matter_material_bad_count', { n: number }) };
    }
    if (seen.has(material.name)) return { error: t('matter_material_twice', { name: material.name }) };
    seen.add(material.name);
    materials.push(material);
  }
  return {
    matter: {
      id,
      department: $('matter-dept').value,
      name,
      materials,
      legal_basis: $('matter-legal-basis').value.trim(),
      fee: $('matter-fee').value.trim(),
      time_limit: $('matter-time-limit').value.trim(),
      online: $('matter-online').checked,
    },
  };
}

async function submitForm(event) {
  event.preventDefault();
  $('matter-saved').hidden = true;
  const { matter, error } = readForm();
  if (error) {
    showFormError(error);
    return;
  }
  showFormError('');
  const btn = $('matter-save');
  btn.disabled = true;
  try {
    const data = await fetchJSON(`/api/admin/matters/${encodeURIComponent(matter.id)}`, {
      method: 'PUT', body: matter,
    });
    section.chosen = data.matter.department;
    closeForm();
    $('matter-saved').hidden = false;
    await loadMatters();
  } catch (err) {
    if (!section.onAuthError(err)) showFormError(errorText(err));
  } finally {
    btn.disabled = false;
  }
}

// Wire the section: `departments()` the page's departments; `onAuthError(err)` handles 401/403
// (true when it did).
export function initMatters({ departments, onAuthError }) {
  section.departments = departments;
  section.onAuthError = onAuthError;
  $('matter-department').addEventListener('change', () => {
    section.chosen = $('matter-department').value;
    closeForm();
    $('matter-saved').hidden = true;
    loadMatters();
  });
  $('matter-new').addEventListener('click', () => openForm());
  $('matter-material-add').addEventListener('click', addMaterial);
  $('matter-cancel').addEventListener('click', closeForm);
  $('matter-form').addEventListener('submit', submitForm);
}

// Signed out: nothing of the last admin's view stays on the page.
export function resetMatters() {
  section.chosen = '';
  section.matters = [];
  closeForm();
  $('matter-saved').hidden = true;
  renderMatters();
}
