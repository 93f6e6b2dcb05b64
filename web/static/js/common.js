// Shared helpers for the three pages: i18n tables and the language toggle, the Socket.IO
// helper (ack promises, timeouts, error display), fetchJSON, and the room/WebRTC session.
import { io } from '/static/vendor/socket.io/socket.io.esm.min.js';

// ---------------------------------------------------------------------------------------------
// i18n. One entry per line (tests/test_web_static.py checks both tables have the same keys).
// ---------------------------------------------------------------------------------------------
const STRINGS = {
  zh: {
    app_name: '云诊',
    lang_toggle: 'English',
    title_kiosk: '云诊 视频咨询',
    title_staff: '云诊 坐席工作台',
    title_supervisor: '云诊 督查 · 实时监控与录像',
    loading: '正在加载…',
    connecting: '正在连接服务器…',
    disconnected: '网络连接中断，正在重新连接…',
    err_timeout: '服务器没有响应，请稍后再试。',
    err_network: '网络错误，请检查网络后再试。',
    err_generic: '操作失败，请稍后再试。',
    err_camera: '无法打开摄像头或麦克风，对方可能看不到或听不到您。',
    close: '关闭',
    back: '返回',
    // kiosk
    kiosk_heading: '云诊 视频咨询',
    kiosk_subtitle: '请选择您要咨询的部门，工作人员将通过视频为您解答',
    kiosk_footer: '最多跑一次 · 一次性告知 · 欢迎评价',
    no_departments: '暂无可咨询的部门',
    notice_heading: '录音录像告知',
    notice_department: '咨询部门：{dept}',
    notice_text: '本次视频咨询将全程录音录像，录像仅供督查人员依法调阅，保存180天。',
    notice_detail: '录像用于保障服务质量和您的合法权益，不会用于其他用途。',
    consent_accept: '我已阅读并同意录音录像',
    consent_decline: '不同意',
    start_consult: '开始视频咨询',
    declined_heading: '无法开始视频咨询',
    declined_text: '为保障服务质量和双方权益，视频咨询需要全程录音录像，未经同意无法进行。',
    declined_hint: '您可以到大厅服务窗口现场咨询，或拨打 12345 政务服务便民热线。',
    declined_back: '返回首页',
    waiting_heading: '正在为您排队',
    ticket_number: '您的号码',
    queue_position: '您当前排在第 {n} 位',
    queue_ringing: '正在呼叫工作人员…',
    queue_hint: '请在屏幕前稍候，接通后将自动进入视频通话。',
    cancel_consult: '取消咨询',
    creating_ticket: '正在取号…',
    call_connecting: '正在接通视频…',
    call_with: '{dept} 工作人员',
    you: '我',
    hangup: '结束通话',
    chat_heading: '文字消息',
    chat_placeholder: '输入文字消息…',
    chat_send: '发送',
    mic_mute: '静音',
    mic_unmute: '取消静音',
    camera_stop: '关闭摄像头',
    camera_start: '打开摄像头',
    share_start: '共享屏幕',
    share_stop: '停止共享',
    remote_muted: '对方已静音',
    remote_camera_off: '对方已关闭摄像头',
    // room state (rooms/): observer, reconnection, speaking, recording
    observer_note: '督查旁听中',
    reconnecting_self: '正在重新连接…',
    remote_reconnecting: '重新连接中…',
    recording_on: '● 录制中',
    recording_interrupted: '录制中断',
    rating_heading: '请为本次服务评价',
    rating_subtitle: '您的评价将帮助我们改进服务（好差评）',
    rating_5: '非常满意',
    rating_4: '满意',
    rating_3: '基本满意',
    rating_2: '不满意',
    rating_1: '非常不满意',
    rating_submit: '提交评价',
    rating_skip: '跳过',
    thanks_heading: '感谢您的评价',
    thanks_text: '祝您办事顺利！{s} 秒后返回首页。',
    thanks_back: '返回首页',
    ticket_cancelled: '本次咨询已取消。',
    // staff & supervisor shared
    login_heading: '工作人员登录',
    login_heading_supervisor: '督查人员登录',
    login_username: '用户名',
    login_password: '密码',
    login_submit: '登录',
    login_busy: '正在登录…',
    login_missing: '请输入用户名和密码。',
    logout: '退出登录',
    // staff
    staff_departments: '所属部门：{depts}',
    presence_label: '当前状态',
    presence_available: '空闲可接听',
    presence_away: '暂离',
    presence_offline: '离线',
    presence_ringing: '来电中',
    presence_in_call: '通话中',
    queues_heading: '排队情况',
    queue_waiting: '{n} 人等待',
    desk_hint: '设为“空闲可接听”后，有群众排队时系统会自动呼叫您。',
    incoming_heading: '来电',
    incoming_detail: '{number} · {dept}',
    incoming_expires: '{s} 秒后自动转接',
    accept_call: '接听',
    decline_call: '拒接',
    withdrawn_cancelled: '群众已取消排队，来电已撤回。',
    withdrawn_timeout: '超时未接听，来电已转给其他工作人员。',
    withdrawn_taken: '来电已由其他工作人员接听。',
    call_applicant: '群众 {number}',
    call_ended: '通话已结束。',
    staff_only: '只有坐席工作人员可以使用工作台。',
    // supervisor
    recordings_heading: '录像列表',
    refresh: '刷新',
    col_time: '时间',
    col_department: '部门',
    col_ticket: '号码',
    col_staff: '工作人员',
    col_duration: '时长',
    col_rating: '评价',
    col_complete: '完整',
    col_actions: '操作',
    recording_play: '回放',
    no_recordings: '暂无录像',
    complete_yes: '完整',
    complete_no: '不完整',
    not_rated: '未评价',
    forbidden_recordings: '只有督查人员可以查看录像',
    player_heading: '录像回放 · {number}',
    player_play: '播放',
    player_pause: '暂停',
    player_close: '关闭回放',
    player_events: '时间线',
    player_no_events: '无事件',
    player_no_tracks: '该录像没有可播放的媒体。',
    player_not_started: '尚未开始',
    role_applicant: '群众',
    role_staff: '工作人员',
    role_supervisor: '督查',
    kind_audio: '音频',
    kind_video: '视频',
    event_open: '咨询开始',
    event_join: '{who} 加入',
    event_leave: '{who} 离开',
    event_publish: '{who} 开始发送{kind}',
    event_hangup: '{who} 结束通话',
    event_close: '咨询结束（{reason}）',
    event_rating: '群众评价：{rating}',
    event_other: '{who} {type}',
    someone: '系统',
    dept_search_placeholder: '搜索部门或事项，如：社保、营业执照、公积金',
    dept_search_clear: '清除',
    dept_search_none: '没有找到相关部门，请换个关键词，或请导服人员帮忙',
    dept_matches: '相关事项：{matters}',
    dept_closed: '暂停服务',
    dept_hours: '服务时间：{hours}',
    hours_all_day: '全天',
    hours_rest: '休息',
    hours_none: '未设置',
    hours_range: '{from}至{to}',
    hours_sep: '；',
    day_mon: '周一',
    day_tue: '周二',
    day_wed: '周三',
    day_thu: '周四',
    day_fri: '周五',
    day_sat: '周六',
    day_sun: '周日',
    closed_text: '当前不在服务时间（服务时间：{hours}）',
    closed_text_plain: '当前不在服务时间',
    closed_next: '下次开始服务：{time}',
    queue_full_text: '当前排队人数已满',
    callback_heading: '预约回电',
    callback_intro: '请留下您的联系方式，工作人员上班后会给您回电。',
    callback_name: '您的姓名',
    callback_phone: '联系电话',
    callback_note: '想咨询的事项（选填）',
    callback_submit: '提交回电预约',
    callback_sending: '正在提交…',
    callback_bad_name: '请填写姓名（不超过32个字）。',
    callback_bad_phone: '请填写正确的电话号码（5至20位数字）。',
    callback_done_heading: '已为您预约回电',
    callback_done_text: '工作人员上班后会给您回电',
    callback_done_countdown: '{s} 秒后返回首页。',
    queue_eta: '预计等待约 {n} 分钟',
    queue_no_staff: '暂无工作人员在岗',
    priority_badge: '优先',
    ticket_abandoned: '您离开的时间过长，号码已失效，请重新取号。',
    guide_mode: '导服',
    login_heading_guide: '导服人员登录',
    guide_only: '需要导服人员账号才能开启优先通道。',
    guide_active: '导服模式（{name}）：取号后自动退出',
    guide_exit: '退出导服',
    priority_lane: '优先通道：老年人、残疾人、孕妇',
    presence_wrap_up: '整理中',
    away_reason_label: '暂离原因',
    away_reason_rest: '休息',
    away_reason_meeting: '会议',
    away_reason_other: '其他',
    away_reason_missed: '连续未接，已自动暂停接听',
    presence_reason: '原因：{reason}',
    queue_longest: '最长等待 {t}',
    queue_longest_none: '无人等待',
    wrap_up_text: '通话后整理：{s} 秒后自动恢复接听',
    wrap_up_done: '整理完毕，继续接听',
    callbacks_heading: '回电预约',
    callbacks_empty: '暂无回电预约',
    callback_done_button: '已回电',
    callback_meta: '{dept} · {time}',
    wallboard_heading: '实时监控',
    wallboard_queues: '排队',
    wallboard_staff: '坐席',
    wallboard_updated: '更新于 {time}',
    wallboard_error: '实时数据暂时无法获取，稍后自动重试',
    wallboard_no_staff: '暂无坐席',
    col_waiting: '等待人数',
    col_longest: '最长等待',
    col_staff_counts: '坐席状态',
    col_name: '姓名',
    col_departments: '所属部门',
    col_presence: '状态',
    col_reason: '原因',
    col_since: '持续',
    title_admin: '云诊 管理',
    login_heading_admin: '管理员登录',
    forbidden_admin: '只有管理员可以使用管理页面',
    admin_departments: '部门',
    admin_choose: '请选择一个部门进行设置。',
    admin_dept_heading: '部门设置 · {dept}',
    admin_json_hint: '按 JSON 格式修改：名称、号码前缀、事项、服务时间（如 "mon-fri": ["09:00-12:00", "13:30-17:00"]，"00:00-24:00" 为全天）、休息日、振铃超时、重新呼叫间隔、连续未接次数、整理时间、排队上限、AB岗后备组（after 为等待秒数）。保存后立即生效。',
    department_save: '保存',
    department_saving: '正在保存…',
    department_saved: '已保存，立即生效。',
    department_reload: '重新载入',
    department_bad_json: 'JSON 格式错误：{error}',
    department_not_object: '内容必须是一个 JSON 对象 {…}',
    log_heading: '排队日志下载',
    log_from: '开始日期',
    log_to: '结束日期',
    log_download: '下载 CSV',
    log_bad_range: '结束日期不能早于开始日期。',
    // Who joins a live room: 会商 invitations, the hall guide, listening in (supervisor).
    away_reason_consult: '会商中',
    invite_heading: '邀请其他部门会商',
    invite_department: '部门',
    invite_note: '备注（可选）',
    invite_send: '邀请',
    invite_sent: '已邀请{dept}，等待对方加入',
    invites_heading: '会商邀请',
    invites_empty: '暂无会商邀请',
    invite_detail: '{from}邀请{dept}会商 · 号码 {number}',
    invite_by: '邀请人：{name}',
    invite_join: '加入会商',
    invite_taken: '{dept}的会商已由同事加入',
    call_consult: '会商 · {number}',
    leave_room: '离开会话',
    guide_heading: '我引导的办理',
    guide_empty: '暂无进行中的办理',
    guide_join: '加入',
    guide_status_waiting: '排队中',
    guide_status_ringing: '正在呼叫',
    guide_status_connected: '通话中',
    live_rooms_heading: '进行中的会话',
    live_rooms_empty: '暂无进行中的会话',
    col_participants: '人数',
    col_started: '已进行',
    observe_start: '旁听',
    observe_stop: '结束旁听',
    observe_heading: '旁听 · {number}',
    observe_ended: '会话已结束',
    role_guide: '导服',
    event_invite: '{who} 邀请其他部门会商',
    event_invite_taken: '{who} 受邀加入会商',
  },
  en: {
    app_name: 'Yunzhen',
    lang_toggle: '中文',
    title_kiosk: 'Yunzhen Video Consultation',
    title_staff: 'Yunzhen Staff Desk',
    title_supervisor: 'Yunzhen Supervision · Live and Recordings',
    loading: 'Loading…',
    connecting: 'Connecting to the server…',
    disconnected: 'Connection lost, reconnecting…',
    err_timeout: 'The server did not answer. Please try again later.',
    err_network: 'Network error. Please check the connection and try again.',
    err_generic: 'Something went wrong. Please try again later.',
    err_camera: 'Cannot open the camera or microphone; the other side may not see or hear you.',
    close: 'Close',
    back: 'Back',
    kiosk_heading: 'Yunzhen Video Consultation',
    kiosk_subtitle: 'Choose a department; its staff will answer you by video',
    kiosk_footer: 'One trip at most · Everything told at once · Rate our service',
    no_departments: 'No departments available',
    notice_heading: 'Recording notice',
    notice_department: 'Department: {dept}',
    notice_text: 'This video consultation is recorded in full (audio and video). Recordings may be viewed only by supervisors as the law allows, and are kept for 180 days.',
    notice_detail: 'Recordings protect the quality of service and your rights and are used for nothing else.',
    consent_accept: 'I have read and agree to the recording',
    consent_decline: 'I do not agree',
    start_consult: 'Start video consultation',
    declined_heading: 'The consultation cannot start',
    declined_text: 'Video consultations are recorded in full to protect both sides; without consent they cannot take place.',
    declined_hint: 'Please ask at a service window in the hall, or call the 12345 government service hotline.',
    declined_back: 'Back to start',
    waiting_heading: 'You are in the queue',
    ticket_number: 'Your number',
    queue_position: 'You are number {n} in the queue',
    queue_ringing: 'Calling a staff member…',
    queue_hint: 'Please wait in front of the screen; the video call starts by itself.',
    cancel_consult: 'Cancel',
    creating_ticket: 'Taking a number…',
    call_connecting: 'Connecting the video…',
    call_with: '{dept} staff',
    you: 'Me',
    hangup: 'End call',
    chat_heading: 'Messages',
    chat_placeholder: 'Type a message…',
    chat_send: 'Send',
    mic_mute: 'Mute',
    mic_unmute: 'Unmute',
    camera_stop: 'Stop camera',
    camera_start: 'Start camera',
    share_start: 'Share screen',
    share_stop: 'Stop sharing',
    remote_muted: 'Muted',
    remote_camera_off: 'Camera off',
    // room state (rooms/): observer, reconnection, speaking, recording
    observer_note: 'Supervisor listening',
    reconnecting_self: 'Reconnecting…',
    remote_reconnecting: 'Reconnecting…',
    recording_on: '● Recording',
    recording_interrupted: 'Recording interrupted',
    rating_heading: 'Please rate this service',
    rating_subtitle: 'Your rating helps us improve',
    rating_5: 'Very satisfied',
    rating_4: 'Satisfied',
    rating_3: 'Fairly satisfied',
    rating_2: 'Dissatisfied',
    rating_1: 'Very dissatisfied',
    rating_submit: 'Submit rating',
    rating_skip: 'Skip',
    thanks_heading: 'Thank you for your rating',
    thanks_text: 'Good luck with your matter! Back to the start in {s} s.',
    thanks_back: 'Back to start',
    ticket_cancelled: 'The consultation was cancelled.',
    login_heading: 'Staff login',
    login_heading_supervisor: 'Supervisor login',
    login_username: 'Username',
    login_password: 'Password',
    login_submit: 'Log in',
    login_busy: 'Logging in…',
    login_missing: 'Please enter your username and password.',
    logout: 'Log out',
    staff_departments: 'Departments: {depts}',
    presence_label: 'Status',
    presence_available: 'Available',
    presence_away: 'Away',
    presence_offline: 'Offline',
    presence_ringing: 'Ringing',
    presence_in_call: 'In a call',
    queues_heading: 'Queues',
    queue_waiting: '{n} waiting',
    desk_hint: 'When you are available, the system rings you as soon as someone is waiting.',
    incoming_heading: 'Incoming call',
    incoming_detail: '{number} · {dept}',
    incoming_expires: 'Passed on in {s} s',
    accept_call: 'Answer',
    decline_call: 'Decline',
    withdrawn_cancelled: 'The applicant cancelled; the call was withdrawn.',
    withdrawn_timeout: 'Not answered in time; the call went to another staff member.',
    withdrawn_taken: 'Another staff member answered the call.',
    call_applicant: 'Applicant {number}',
    call_ended: 'The call has ended.',
    staff_only: 'Only department staff can use the staff desk.',
    recordings_heading: 'Recordings',
    refresh: 'Refresh',
    col_time: 'Time',
    col_department: 'Department',
    col_ticket: 'Number',
    col_staff: 'Staff',
    col_duration: 'Duration',
    col_rating: 'Rating',
    col_complete: 'Complete',
    col_actions: 'Actions',
    recording_play: 'Play',
    no_recordings: 'No recordings yet',
    complete_yes: 'Complete',
    complete_no: 'Incomplete',
    not_rated: 'Not rated',
    forbidden_recordings: 'Only supervisors can view recordings',
    player_heading: 'Replay · {number}',
    player_play: 'Play',
    player_pause: 'Pause',
    player_close: 'Close replay',
    player_events: 'Timeline',
    player_no_events: 'No events',
    player_no_tracks: 'This recording has no playable media.',
    player_not_started: 'Not started yet',
    role_applicant: 'Applicant',
    role_staff: 'Staff',
    role_supervisor: 'Supervisor',
    kind_audio: 'audio',
    kind_video: 'video',
    event_open: 'Consultation opened',
    event_join: '{who} joined',
    event_leave: '{who} left',
    event_publish: '{who} started sending {kind}',
    event_hangup: '{who} ended the call',
    event_close: 'Consultation closed ({reason})',
    event_rating: 'Applicant rated: {rating}',
    event_other: '{who} {type}',
    someone: 'System',
    dept_search_placeholder: 'Search a department or matter',
    dept_search_clear: 'Clear',
    dept_search_none: 'No department found. Try another word or ask a hall guide',
    dept_matches: 'Matters: {matters}',
    dept_closed: 'Not serving now',
    dept_hours: 'Hours: {hours}',
    hours_all_day: 'all day',
    hours_rest: 'closed',
    hours_none: 'not set',
    hours_range: '{from}–{to}',
    hours_sep: '; ',
    day_mon: 'Mon',
    day_tue: 'Tue',
    day_wed: 'Wed',
    day_thu: 'Thu',
    day_fri: 'Fri',
    day_sat: 'Sat',
    day_sun: 'Sun',
    closed_text: 'Not in service hours now (hours: {hours})',
    closed_text_plain: 'Not in service hours now',
    closed_next: 'Service starts again: {time}',
    queue_full_text: 'The queue is full right now',
    callback_heading: 'Request a call back',
    callback_intro: 'Leave your phone number and a staff member will call you back when on duty.',
    callback_name: 'Your name',
    callback_phone: 'Phone number',
    callback_note: 'What you want to ask (optional)',
    callback_submit: 'Request a call back',
    callback_sending: 'Sending…',
    callback_bad_name: 'Please enter your name (at most 32 characters).',
    callback_bad_phone: 'Please enter a valid phone number (5 to 20 digits).',
    callback_done_heading: 'Call back requested',
    callback_done_text: 'A staff member will call you back when on duty',
    callback_done_countdown: 'Back to the start in {s} s.',
    queue_eta: 'Estimated wait: about {n} min',
    queue_no_staff: 'No staff member is on duty right now',
    priority_badge: 'Priority',
    ticket_abandoned: 'You were away too long; the number has expired. Please take a new one.',
    guide_mode: 'Guide',
    login_heading_guide: 'Hall guide login',
    guide_only: 'A hall guide account is needed for the priority lane.',
    guide_active: 'Guide mode ({name}): logs out after the next number',
    guide_exit: 'Leave guide mode',
    priority_lane: 'Priority lane: elderly, disabled, pregnant',
    presence_wrap_up: 'Wrap-up',
    away_reason_label: 'Reason',
    away_reason_rest: 'Break',
    away_reason_meeting: 'Meeting',
    away_reason_other: 'Other',
    away_reason_missed: 'Missed calls in a row; answering paused automatically',
    presence_reason: 'Reason: {reason}',
    queue_longest: 'Longest wait {t}',
    queue_longest_none: 'Nobody waiting',
    wrap_up_text: 'Wrap-up: available again in {s} s',
    wrap_up_done: 'Done, take calls',
    callbacks_heading: 'Call-back requests',
    callbacks_empty: 'No call-back requests',
    callback_done_button: 'Called back',
    callback_meta: '{dept} · {time}',
    wallboard_heading: 'Live wallboard',
    wallboard_queues: 'Queues',
    wallboard_staff: 'Staff',
    wallboard_updated: 'Updated {time}',
    wallboard_error: 'Live data unavailable; retrying',
    wallboard_no_staff: 'No staff',
    col_waiting: 'Waiting',
    col_longest: 'Longest wait',
    col_staff_counts: 'Staff by state',
    col_name: 'Name',
    col_departments: 'Departments',
    col_presence: 'State',
    col_reason: 'Reason',
    col_since: 'For',
    title_admin: 'Yunzhen Administration',
    login_heading_admin: 'Administrator login',
    forbidden_admin: 'Only administrators can use this page',
    admin_departments: 'Departments',
    admin_choose: 'Choose a department to edit.',
    admin_dept_heading: 'Department settings · {dept}',
    admin_json_hint: 'Edit as JSON: names, number prefix, matters, hours (e.g. "mon-fri": ["09:00-12:00", "13:30-17:00"]; "00:00-24:00" is all day), closed days, ring timeout, ring pause, misses before pause, wrap-up, queue limit, backup groups (after = seconds waited). Takes effect on save.',
    department_save: 'Save',
    department_saving: 'Saving…',
    department_saved: 'Saved; in effect now.',
    department_reload: 'Reload',
    department_bad_json: 'Not valid JSON: {error}',
    department_not_object: 'The content must be one JSON object {…}',
    log_heading: 'Queue log download',
    log_from: 'From',
    log_to: 'To',
    log_download: 'Download CSV',
    log_bad_range: 'The end date cannot be before the start date.',
    // Who joins a live room: 会商 invitations, the hall guide, listening in (supervisor).
    away_reason_consult: 'In a joint consultation',
    invite_heading: 'Invite another department',
    invite_department: 'Department',
    invite_note: 'Note (optional)',
    invite_send: 'Invite',
    invite_sent: '{dept} invited; waiting for them to join',
    invites_heading: 'Consultation invitations',
    invites_empty: 'No invitations',
    invite_detail: '{from} invites {dept} · ticket {number}',
    invite_by: 'Invited by {name}',
    invite_join: 'Join',
    invite_taken: 'A colleague joined the {dept} consultation',
    call_consult: 'Joint consultation · {number}',
    leave_room: 'Leave',
    guide_heading: 'My consultations in progress',
    guide_empty: 'No consultations in progress',
    guide_join: 'Join',
    guide_status_waiting: 'Waiting',
    guide_status_ringing: 'Calling staff',
    guide_status_connected: 'In a call',
    live_rooms_heading: 'Live consultations',
    live_rooms_empty: 'No live consultations',
    col_participants: 'People',
    col_started: 'Running for',
    observe_start: 'Listen in',
    observe_stop: 'Stop listening',
    observe_heading: 'Listening in · {number}',
    observe_ended: 'The consultation has ended',
    role_guide: 'Hall guide',
    event_invite: '{who} invited another department',
    event_invite_taken: '{who} joined by invitation',
  },
};

const LANG_COOKIE = 'yz_lang';

function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

// The server renders <html lang> from ?lang= or the cookie; read it back so both agree.
export function currentLang() {
  const html = (document.documentElement.lang || '').toLowerCase();
  if (html.startsWith('en')) return 'en';
  if (html.startsWith('zh')) return 'zh';
  const fromUrl = new URLSearchParams(location.search).get('lang');
  if (fromUrl === 'en' || fromUrl === 'zh') return fromUrl;
  return readCookie(LANG_COOKIE) === 'en' ? 'en' : 'zh';
}

export function t(key, params = {}) {
  const table = STRINGS[currentLang()];
  let text = table[key] ?? STRINGS.zh[key] ?? key;
  for (const [name, value] of Object.entries(params)) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

export function setLang(lang) {
  const value = lang === 'en' ? 'en' : 'zh';
  document.cookie = `${LANG_COOKIE}=${value}; path=/; max-age=31536000; SameSite=Lax`;
  // An explicit ?lang= would win over the cookie on reload, so rewrite it too.
  const url = new URL(location.href);
  if (url.searchParams.has('lang')) {
    url.searchParams.set('lang', value);
    location.replace(url.toString());
  } else {
    location.reload();
  }
}

// Fill every [data-i18n] (text) and [data-i18n-placeholder] / [data-i18n-title] under root.
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.title = t(el.dataset.i18nTitle);
  }
}

// Page start: html lang, title, strings, and the toggle button (data-testid="lang-toggle").
export function initPage(titleKey) {
  const lang = currentLang();
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  document.title = t(titleKey);
  applyI18n();
  for (const btn of document.querySelectorAll('[data-testid="lang-toggle"]')) {
    btn.textContent = t('lang_toggle');
    btn.addEventListener('click', () => setLang(lang === 'en' ? 'zh' : 'en'));
  }
}

// Department names in the page language; `departments` is [{id, name_zh, name_en}].
export function departmentName(departments, id) {
  const dept = (departments || []).find((d) => d.id === id);
  if (!dept) return id ?? '';
  return currentLang() === 'en' ? dept.name_en || dept.name_zh : dept.name_zh || dept.name_en;
}

// Boot data rendered by the server into <script type="application/json" id="yz-boot">.
export function bootData() {
  const el = document.getElementById('yz-boot');
  if (!el) return {};
  try {
    return JSON.parse(el.textContent || '{}') || {};
  } catch {
    return {};
  }
}

export async function loadDepartments() {
  const boot = bootData();
  if (Array.isArray(boot.departments) && boot.departments.length) return boot.departments;
  const data = await fetchJSON('/api/departments');
  return data.departments || [];
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
export class YzError extends Error {
  constructor(code, message, messageEn, status = 0) {
    super(message || code);
    this.code = code;
    this.messageZh = message || '';
    this.messageEn = messageEn || '';
    this.status = status;
  }

  // The text to show the user, in the page language.
  get display() {
    if (currentLang() === 'en') return this.messageEn || this.messageZh || t('err_generic');
    return this.messageZh || this.messageEn || t('err_generic');
  }

  static from(errorObject, status = 0) {
    const e = errorObject || {};
    const err = new YzError(e.code || 'internal', e.message, e.message_en, status);
    // Extra facts some errors carry: `detail` (the admin API's validation), `next_open` (closed).
    err.detail = e.detail ?? null;
    err.nextOpen = e.next_open ?? null;
    return err;
  }
}

export function errorText(err) {
  if (err instanceof YzError) return err.display;
  return t('err_generic');
}

let errorTimer = null;

// One shared error banner per page (data-testid="error-message").
export function showError(errOrText, { sticky = false } = {}) {
  const el = document.querySelector('[data-testid="error-message"]');
  const text = typeof errOrText === 'string' ? errOrText : errorText(errOrText);
  if (!el) {
    console.error(text);
    return;
  }
  el.textContent = text;
  el.hidden = false;
  clearTimeout(errorTimer);
  if (!sticky) errorTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

export function clearError() {
  const el = document.querySelector('[data-testid="error-message"]');
  if (el) el.hidden = true;
  clearTimeout(errorTimer);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------
export async function fetchJSON(url, { method = 'GET', body, timeoutMs = 15000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' }
        : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') {
      throw new YzError('timeout', STRINGS.zh.err_timeout, STRINGS.en.err_timeout);
    }
    throw new YzError('network', STRINGS.zh.err_network, STRINGS.en.err_network);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok || !data || data.ok === false) {
    if (data && data.error) throw YzError.from(data.error, response.status);
    throw new YzError(`http_${response.status}`, STRINGS.zh.err_generic, STRINGS.en.err_generic,
      response.status);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Socket.IO
// ---------------------------------------------------------------------------------------------
const ACK_TIMEOUT_MS = 10000;

// Connect to a namespace; shows a "reconnecting" banner (data-testid="connection-status")
// while the socket is down. The caller re-reads its state on every 'connect'.
export function connectNamespace(namespace) {
  // WebSocket first (no sticky sessions needed between processes), polling if a proxy blocks it.
  const socket = io(namespace, {
    path: '/socket.io/', transports: ['websocket', 'polling'], tryAllTransports: true,
  });
  const banner = document.querySelector('[data-testid="connection-status"]');
  const setDown = (down) => {
    if (!banner) return;
    banner.hidden = !down;
    banner.textContent = t('disconnected');
  };
  socket.on('connect', () => setDown(false));
  socket.on('disconnect', (reason) => {
    // A disconnect we asked for is not an outage.
    if (reason !== 'io client disconnect') setDown(true);
  });
  socket.io.on('reconnect_attempt', () => setDown(true));
  return socket;
}

// Emit with an acknowledgement; resolves with the answer when ok, rejects with YzError.
export async function emitAck(socket, event, payload = {}, timeoutMs = ACK_TIMEOUT_MS) {
  let answer;
  try {
    answer = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw new YzError('timeout', STRINGS.zh.err_timeout, STRINGS.en.err_timeout);
  }
  if (!answer || typeof answer !== 'object') {
    throw new YzError('internal', STRINGS.zh.err_generic, STRINGS.en.err_generic);
  }
  if (answer.ok === false) throw YzError.from(answer.error);
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Room: one RTCPeerConnection to the server's SFU. The server always offers; we answer.
// ---------------------------------------------------------------------------------------------
const ICE_GATHER_TIMEOUT_MS = 5000;

function waitIceComplete(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export async function openLocalMedia() {
  const constraints = {
    audio: { echoCancellation: true, noiseSuppression: true },
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch {
    // A kiosk without a camera can still talk; without both it can still listen.
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return null;
    }
  }
}

// How long the own peer connection may stay "disconnected" before the page joins again.
const PC_LOST_AFTER_MS = 4000;

function playSafely(el) {
  const p = el.play();
  if (p && p.catch) p.catch(() => {});
}

// A consultation room as seen by one page.
//   localVideo:   <video> for the own camera (muted).
//   remoteVideo:  <video> for the main remote participant.
//   extraRemotes: optional container for more participants (joint consultations).
//   preferRole:   which role goes to remoteVideo when several participants are present.
export class RoomSession {
  constructor({ roomId, token, localVideo, remoteVideo, extraRemotes = null, preferRole = null,
    chatLog = null, onEnded = () => {}, onParticipants = () => {}, onRemoteMedia = () => {} }) {
    this.roomId = roomId;
    this.token = token;
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    this.extraRemotes = extraRemotes;
    this.preferRole = preferRole;
    this.onEnded = onEnded;
    this.onParticipants = onParticipants;
    this.onRemoteMedia = onRemoteMedia;
    this.chatLog = chatLog;
    // The own microphone and camera; off means the track is disabled (silence, black frames).
    this.micOn = true;
    this.cameraOn = true;
    // The own shared screen (getDisplayMedia), sent on the transceiver the server offers as
    // `publish.screen`; screenMid is that transceiver's mid while the server receives it.
    this.screenStream = null;
    this.screenMid = null;
    this.socket = null;
    this.pc = null;
    this.localStream = null;
    this.iceServers = [];
    this.participantId = null;
    this.participants = [];
    this.tracksByMid = new Map();
    this.offerChain = Promise.resolve();
    this.joining = Promise.resolve();
    this.closed = false;
    this.endedReason = null;
    this.shownTracks = new Map(); // element -> track ids key, to avoid needless srcObject resets
    this.role = null;
    this.localOpened = false;
    // Set from each offer: no `publish` mids means this page only receives.
    this.observer = false;
    this.hiddenForObserver = [];
    // Reconnection: set while this page's socket or peer connection is down, until the new
    // peer connection is up. joinGen counts joins, so that an offer meant for the connection
    // before a rejoin is not answered on the new one.
    this.reconnecting = false;
    this.joinGen = 0;
    this.lostTimer = null;
    // Participants speaking now (room:speaking), and the one in the main picture.
    this.speaking = new Set();
    this.mainId = null;
    // The room's recording: "on", or "interrupted" when it stopped during the call.
    this.recording = null;
  }

  async start() {
    if (this.chatLog) this.chatLog.replaceChildren();
    renderCallControls(this);
    RoomSession.active.add(this);
    this.socket = connectNamespace('/room');
    // Socket.IO reconnects by itself after a network drop; every (re)connection joins again
    // with the same token, and the server gives this participant their place back.
    this.socket.on('connect', () => { this.joining = this.join(); });
    this.socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') this.setReconnecting(true);
    });
    this.socket.on('room:offer', (offer) => {
      // The server may send its offer before our join ack arrives; the ack carries the ICE
      // servers the connection needs, so every offer waits for the current join first.
      const joined = this.joining;
      const gen = this.joinGen;
      this.offerChain = this.offerChain.then(() => joined).then(() => {
        if (gen === this.joinGen) return this.answerOffer(offer);
        return undefined;
      }).catch((err) => {
        console.error('room offer failed', err);
        showError(err instanceof YzError ? err : t('err_generic'));
      });
    });
    this.socket.on('room:participants', (msg) => {
      this.participants = (msg && msg.participants) || [];
      if (msg && msg.recording) this.recording = msg.recording;
      this.speaking = new Set(this.participants.filter((p) => p.speaking).map((p) => p.participant_id));
      this.onParticipants(this.participants);
      this.renderRoomState();
      this.refreshRemote();
    });
    this.socket.on('room:speaking', (msg) => {
      if (!msg || !msg.participant_id) return;
      if (msg.speaking) this.speaking.add(msg.participant_id);
      else this.speaking.delete(msg.participant_id);
      this.renderFlags();
    });
    this.socket.on('room:ended', (msg) => this.end((msg && msg.reason) || 'ended'));
    this.socket.on('room:chat', (msg) => this.showChat(msg));
  }

  // The own camera and microphone, opened at the first offer that asks this page to publish:
  // an observer (a silent supervisor) is never asked, and never opens them.
  async openLocal() {
    if (this.localOpened) return;
    this.localOpened = true;
    this.localStream = await openLocalMedia();
    if (!this.localStream || this.localStream.getVideoTracks().length === 0) {
      showError(t('err_camera'));
    }
    if (this.closed) {
      if (this.localStream) for (const track of this.localStream.getTracks()) track.stop();
      return;
    }
    if (this.localVideo && this.localStream) {
      this.localVideo.muted = true;
      this.localVideo.srcObject = this.localStream;
      playSafely(this.localVideo);
    }
    // Mic or camera turned off before they opened: the server was told at the join.
    for (const track of this.localStream ? this.localStream.getAudioTracks() : []) track.enabled = this.micOn;
    for (const track of this.localStream ? this.localStream.getVideoTracks() : []) track.enabled = this.cameraOn;
  }

  // Observers publish nothing: no own tile, no microphone, camera, share or chat controls.
  setObserver(observer) {
    if (this.observer === observer) return;
    this.observer = observer;
    const local = this.localVideo ? this.localVideo.closest('figure') || this.localVideo : null;
    for (const el of [local, $('toggle-mic'), $('toggle-camera'), $('share-screen'), $('chat-form')]) {
      if (!el) continue;
      if (observer) {
        if (!el.hidden) this.hiddenForObserver.push(el);
        el.hidden = true;
      }
    }
    if (!observer) {
      for (const el of this.hiddenForObserver) el.hidden = false;
      this.hiddenForObserver = [];
    }
  }

  // What the room says about itself: that an observer listens (shown to staff, never to the
  // applicant).
  renderRoomState() {
    const note = $('observer-note');
    if (note) {
      note.hidden = this.closed || this.role === 'applicant' || !this.participants.some(
        (p) => p.observer && p.participant_id !== this.participantId);
    }
    const badge = $('recording-badge');
    if (badge) {
      badge.hidden = this.closed || !this.recording;
      badge.dataset.state = this.recording || '';
      badge.textContent = t(this.recording === 'interrupted' ? 'recording_interrupted' : 'recording_on');
    }
    const own = $('call-reconnecting');
    if (own) own.hidden = this.closed || !this.reconnecting;
  }

  setReconnecting(on) {
    if (this.reconnecting === on) return;
    this.reconnecting = on;
    this.renderRoomState();
  }

  // The own peer connection failed, or stayed disconnected for a few seconds, while the socket
  // may still be up: join again (a new peer connection, the same place in the room).
  onConnectionState(pc) {
    if (pc !== this.pc || this.closed) return;
    const state = pc.connectionState;
    if (state === 'connected') {
      clearTimeout(this.lostTimer);
      this.lostTimer = null;
      if (this.socket && this.socket.connected) this.setReconnecting(false);
    } else if (state === 'failed') {
      this.rejoin();
    } else if (state === 'disconnected' && !this.lostTimer) {
      this.lostTimer = setTimeout(() => {
        this.lostTimer = null;
        if (pc === this.pc && pc.connectionState !== 'connected') this.rejoin();
      }, PC_LOST_AFTER_MS);
    }
  }

  rejoin() {
    if (this.closed) return;
    this.setReconnecting(true);
    // Without a socket, its reconnection joins again by itself.
    if (this.socket && this.socket.connected) this.joining = this.join();
  }

  async join() {
    if (this.closed) return;
    this.joinGen += 1;
    try {
      const answer = await emitAck(this.socket, 'room:join', { room_id: this.roomId, token: this.token });
      this.participantId = answer.participant_id;
      this.role = answer.role || null;
      this.recording = answer.recording || null;
      this.iceServers = answer.ice_servers || [];
      this.participants = answer.participants || [];
      this.speaking = new Set(this.participants.filter((p) => p.speaking).map((p) => p.participant_id));
      this.onParticipants(this.participants);
      this.renderRoomState();
      // The conversation so far (the server keeps it), also after a reconnect.
      if (this.chatLog) this.chatLog.replaceChildren();
      for (const msg of answer.chat || []) this.showChat(msg);
      // The server's participant starts with both on: tell it again after a (re)join.
      if (!this.micOn || !this.cameraOn) this.sendMediaState().catch(() => {});
      // Likewise a screen still shared: the server's new participant shares nothing yet.
      if (this.screenStream) emitAck(this.socket, 'room:share', { on: true }).catch(() => {});
      // A (re)join starts a fresh negotiation on the server, so start a fresh connection too.
      this.resetPeerConnection();
    } catch (err) {
      if (this.closed) return;
      showError(err);
      // The room is gone (ended while we were away): treat as ended.
      if (err.code === 'not_found' || err.code === 'forbidden' || err.code === 'bad_state') {
        this.end(err.code);
      }
    }
  }

  resetPeerConnection() {
    if (this.pc) this.pc.close();
    this.tracksByMid = new Map();
    this.shownTracks = new Map();
    this.screenMid = null;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.addEventListener('track', () => this.refreshRemote());
    pc.addEventListener('connectionstatechange', () => this.onConnectionState(pc));
    clearTimeout(this.lostTimer);
    this.lostTimer = null;
    this.pc = pc;
  }

  async answerOffer({ sdp, publish = {}, tracks = [] }) {
    if (this.closed) return;
    if (!this.pc) this.resetPeerConnection();
    const pc = this.pc;
    this.tracksByMid = new Map((tracks || []).map((tr) => [String(tr.mid), tr]));
    const publishing = publish.audio != null || publish.video != null;
    this.setObserver(!publishing);
    if (publishing) await this.openLocal();
    if (this.closed || pc !== this.pc) return;
    // Nothing of this page's own is sent unless the server offers it a `publish` m-line, so an
    // observer's answer is receive-only.
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const audio = this.localStream ? this.localStream.getAudioTracks()[0] || null : null;
    const video = this.localStream ? this.localStream.getVideoTracks()[0] || null : null;
    const screen = this.screenStream ? this.screenStream.getVideoTracks()[0] || null : null;
    const screenMid = publish.screen != null ? String(publish.screen) : null;
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || transceiver.stopped) continue;
      if (publish.audio != null && mid === String(publish.audio)) {
        await transceiver.sender.replaceTrack(audio);
        transceiver.direction = 'sendonly';
      } else if (publish.video != null && mid === String(publish.video)) {
        await transceiver.sender.replaceTrack(video);
        transceiver.direction = 'sendonly';
      } else if (mid === screenMid) {
        await transceiver.sender.replaceTrack(screen);
        transceiver.direction = screen ? 'sendonly' : 'inactive';
      } else if (mid === this.screenMid) {
        // The share stopped: the server made this m-line inactive; it is reused at the next one.
        await transceiver.sender.replaceTrack(null);
        transceiver.direction = 'inactive';
      }
    }
    this.screenMid = screenMid;
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await waitIceComplete(pc);
    if (this.closed || pc !== this.pc) return;
    await emitAck(this.socket, 'room:answer', { sdp: pc.localDescription.sdp });
    this.refreshRemote();
  }

  // Group received tracks by participant (via transceiver mid → `tracks`) and show them.
  refreshRemote() {
    if (!this.pc || this.closed) return;
    const byParticipant = new Map();
    let screen = null; // a shared screen (the first one, should several people share)
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.mid === null || transceiver.stopped) continue;
      const info = this.tracksByMid.get(String(transceiver.mid));
      if (!info || info.participant_id === this.participantId) continue;
      // An observer publishes nothing and gets no tile (the server forwards nothing of it).
      if (this.participants.some((p) => p.participant_id === info.participant_id && p.observer)) continue;
      const track = transceiver.receiver.track;
      if (!track || track.readyState === 'ended') continue;
      if (info.source === 'screen') {
        if (!screen) screen = track;
        continue;
      }
      if (!byParticipant.has(info.participant_id)) {
        byParticipant.set(info.participant_id, { info, tracks: [] });
      }
      byParticipant.get(info.participant_id).tracks.push(track);
    }
    const entries = [...byParticipant.values()];
    const rank = (e) => {
      const hasVideo = e.tracks.some((tr) => tr.kind === 'video');
      return (e.info.role === this.preferRole ? 0 : 2) + (hasVideo ? 0 : 1);
    };
    entries.sort((a, b) => rank(a) - rank(b));
    const [main, ...rest] = entries;
    this.show(this.remoteVideo, main ? main.tracks : []);
    this.showScreen(screen);
    this.mainId = main ? main.info.participant_id : null;
    if (this.extraRemotes) {
      const wanted = new Set(rest.map((e) => e.info.participant_id));
      for (const el of [...this.extraRemotes.querySelectorAll('[data-participant]')]) {
        if (!wanted.has(el.dataset.participant)) el.remove();
      }
      for (const e of rest) {
        let tile = this.extraRemotes.querySelector(`[data-participant="${CSS.escape(e.info.participant_id)}"]`);
        if (!tile) {
          tile = document.createElement('figure');
          tile.className = 'remote-tile';
          tile.dataset.participant = e.info.participant_id;
          const video = document.createElement('video');
          video.autoplay = true;
          video.playsInline = true;
          video.dataset.testid = 'remote-video-extra';
          const caption = document.createElement('figcaption');
          const badges = document.createElement('div');
          badges.className = 'remote-badges';
          // The main tile's badges (_call.html), with -extra test ids.
          for (const name of ['muted', 'camera-off', 'reconnecting']) {
            const badge = document.createElement('span');
            badge.className = 'remote-badge';
            badge.dataset.testid = `remote-${name}-extra`;
            badge.textContent = t(`remote_${name.replace('-', '_')}`);
            badges.append(badge);
          }
          tile.append(video, caption, badges);
          this.extraRemotes.append(tile);
        }
        tile.querySelector('figcaption').textContent = e.info.name || t(`role_${e.info.role}`);
        this.show(tile.querySelector('video'), e.tracks);
      }
    }
    this.renderFlags();
    this.onRemoteMedia(main ? main.info : null, entries.length);
  }

  // The remote-screen element: shown, larger than the camera, while someone shares a screen.
  showScreen(track) {
    const el = $('remote-screen');
    if (!el) return;
    this.show(el, track ? [track] : []);
    el.hidden = !track;
  }

  // Start or stop sharing the own screen. Starting asks the browser for it (getDisplayMedia),
  // then the server, which offers a transceiver for it (`publish.screen`); stopping tells the
  // server, which makes that transceiver inactive, and ends the capture.
  async setScreenShare(on) {
    if (this.closed || !this.socket) return;
    if (on) {
      if (this.screenStream) return;
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      if (this.closed) {
        for (const track of stream.getTracks()) track.stop();
        return;
      }
      this.screenStream = stream;
      // The browser's own "stop sharing" ends the track.
      for (const track of stream.getVideoTracks()) {
        track.addEventListener('ended', () => {
          if (this.screenStream === stream) this.setScreenShare(false).catch(() => {});
        });
      }
      renderCallControls(this);
      try {
        await emitAck(this.socket, 'room:share', { on: true });
      } catch (err) {
        this.stopScreen();
        throw err;
      }
    } else {
      if (!this.screenStream) return;
      this.stopScreen();
      await emitAck(this.socket, 'room:share', { on: false });
    }
  }

  stopScreen() {
    if (this.screenStream) {
      for (const track of this.screenStream.getTracks()) track.stop();
    }
    this.screenStream = null;
    renderCallControls(this);
  }

  // The badges of every remote picture (muted, camera off, reconnecting: room:participants)
  // and the speaking highlight (room:speaking).
  renderFlags() {
    const wrap = this.remoteVideo ? this.remoteVideo.closest('.remote-wrap') : null;
    this.showFlags(this.mainId, wrap, '');
    if (this.extraRemotes) {
      for (const tile of this.extraRemotes.querySelectorAll('[data-participant]')) {
        this.showFlags(tile.dataset.participant, tile, '-extra');
      }
    }
  }

  showFlags(participantId, tile, suffix) {
    const p = (participantId && this.participants.find((x) => x.participant_id === participantId)) || {};
    const root = tile || document;
    for (const [testid, on] of [['remote-muted', p.muted], ['remote-camera-off', p.camera_off],
      ['remote-reconnecting', p.reconnecting]]) {
      const el = $(`${testid}${suffix}`, root);
      if (el) el.hidden = !on;
    }
    if (tile) tile.dataset.speaking = String(Boolean(participantId) && this.speaking.has(participantId));
  }

  setMic(on) {
    this.micOn = Boolean(on);
    return this.applyLocalMedia();
  }

  setCamera(on) {
    this.cameraOn = Boolean(on);
    return this.applyLocalMedia();
  }

  // Disable (not stop) the own tracks, so turning them back on needs no renegotiation, and tell
  // the others.
  async applyLocalMedia() {
    if (this.localStream) {
      for (const track of this.localStream.getAudioTracks()) track.enabled = this.micOn;
      for (const track of this.localStream.getVideoTracks()) track.enabled = this.cameraOn;
    }
    renderCallControls(this);
    await this.sendMediaState();
  }

  async sendMediaState() {
    if (this.closed || !this.socket || !this.participantId) return;
    await emitAck(this.socket, 'room:media', { audio: this.micOn, video: this.cameraOn });
  }

  show(el, tracks) {
    if (!el) return;
    const key = tracks.map((tr) => tr.id).sort().join(',');
    if (this.shownTracks.get(el) === key) return;
    this.shownTracks.set(el, key);
    el.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) playSafely(el);
  }

  // Send a chat line; every participant (this page too) gets it back as room:chat.
  async sendChat(text) {
    if (this.closed || !this.socket) return;
    await emitAck(this.socket, 'room:chat', { text });
  }

  showChat(msg) {
    if (!this.chatLog || !msg) return;
    const mine = msg.participant_id === this.participantId;
    const item = document.createElement('li');
    item.className = `chat-message ${mine ? 'chat-mine' : 'chat-theirs'}`;
    item.dataset.testid = 'chat-message';
    item.dataset.role = msg.role || '';
    const who = document.createElement('span');
    who.className = 'chat-who';
    const time = Number.isFinite(msg.t) ? new Date(msg.t * 1000).toTimeString().slice(0, 5) : '';
    who.textContent = `${mine ? t('you') : msg.name || t(`role_${msg.role}`)} ${time}`;
    const text = document.createElement('span');
    text.className = 'chat-text';
    text.textContent = msg.text;
    item.append(who, text);
    this.chatLog.append(item);
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  async hangup() {
    if (this.closed || !this.socket) return;
    try {
      await emitAck(this.socket, 'room:hangup', {});
    } catch (err) {
      // room:ended usually overtakes the ack and closes our socket, so the ack never comes.
      if (!this.closed) throw err;
    } finally {
      this.end('hangup');
    }
  }

  end(reason) {
    if (this.closed) return;
    this.endedReason = reason;
    this.close();
    this.onEnded(reason);
  }

  // Idempotent: stops the camera, closes the peer connection and the socket.
  close() {
    if (this.closed) return;
    this.closed = true;
    RoomSession.active.delete(this);
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.disconnect();
    }
    if (this.localStream) {
      for (const track of this.localStream.getTracks()) track.stop();
    }
    this.stopScreen();
    for (const el of [this.localVideo, this.remoteVideo]) {
      if (el) el.srcObject = null;
    }
    this.showScreen(null);
    clearTimeout(this.lostTimer);
    this.mainId = null;
    this.renderFlags();
    if (this.extraRemotes) this.extraRemotes.replaceChildren();
    this.setObserver(false);
    this.renderRoomState();
  }
}

// The sessions in progress on this page (one, but a test may look at it: the Chromium tests
// reach a session's socket and peer connection through it to simulate a network drop).
RoomSession.active = new Set();

// The microphone and camera buttons as the room's state says.
function renderCallControls(room) {
  const states = [['toggle-mic', room.micOn, 'mic_mute', 'mic_unmute'],
    ['toggle-camera', room.cameraOn, 'camera_stop', 'camera_start']];
  for (const [testid, on, offKey, onKey] of states) {
    const button = $(testid);
    if (!button) continue;
    button.setAttribute('aria-pressed', String(!on));
    button.textContent = t(on ? offKey : onKey);
  }
  const share = $('share-screen');
  if (share) {
    const sharing = Boolean(room.screenStream) && !room.closed;
    share.setAttribute('aria-pressed', String(sharing));
    share.textContent = t(sharing ? 'share_stop' : 'share_start');
  }
}

// The controls of the call screen (_call.html), wired once per page. `currentRoom()` returns
// the RoomSession in use, or null between calls.
export function initCallControls(currentRoom) {
  const toggles = [['toggle-mic', (room) => room.setMic(!room.micOn)],
    ['toggle-camera', (room) => room.setCamera(!room.cameraOn)],
    ['share-screen', (room) => room.setScreenShare(!room.screenStream)]];
  for (const [testid, toggle] of toggles) {
    const button = $(testid);
    if (!button) continue;
    button.addEventListener('click', () => {
      const room = currentRoom();
      if (room && !room.closed) toggle(room).catch((err) => showError(err));
    });
  }
  const form = $('chat-form');
  const input = $('chat-input');
  const send = $('chat-send');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const room = currentRoom();
      const text = input.value.trim();
      if (!room || !text || send.disabled) return;
      send.disabled = true;
      try {
        await room.sendChat(text);
        input.value = '';
      } catch (err) {
        showError(err);
      } finally {
        send.disabled = false;
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Small DOM helpers
// ---------------------------------------------------------------------------------------------
// The logged-in user: from the page the server rendered, else asked from the server.
export async function currentUser() {
  const boot = bootData();
  if (boot.user && boot.user.username) return boot.user;
  // The server rendered the page and said nobody is logged in: no need to ask again.
  if (boot.has_user) return null;
  try {
    return (await fetchJSON('/api/me')).user || null;
  } catch {
    return null;
  }
}

// The header's user name and logout button, for the pages with a login.
export function renderUserHeader(user) {
  const name = $('user-name');
  name.textContent = user ? user.display_name || user.username : '';
  name.hidden = !user;
  $('logout').hidden = !user;
}

// The login form of _login.html, shown with an optional error message.
export function showLoginScreen(errorText = '') {
  renderUserHeader(null);
  const err = $('login-error');
  err.textContent = errorText;
  err.hidden = !errorText;
  showScreen('login');
  $('login-username').focus();
}

// The login form of _login.html: post it, show the server's message on failure.
// Returns the user on success, null otherwise.
export async function submitLogin(event) {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  if (!username || !password) {
    err.textContent = t('login_missing');
    err.hidden = false;
    return null;
  }
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = t('login_busy');
  err.hidden = true;
  try {
    const answer = await fetchJSON('/api/login', { method: 'POST', body: { username, password } });
    $('login-password').value = '';
    return answer.user;
  } catch (e) {
    err.textContent = e instanceof YzError ? e.display : t('err_generic');
    err.hidden = false;
    return null;
  } finally {
    btn.disabled = false;
    btn.textContent = t('login_submit');
  }
}

export const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

// Show exactly one [data-screen] section.
export function showScreen(name) {
  for (const el of document.querySelectorAll('[data-screen]')) {
    el.hidden = el.dataset.screen !== name;
  }
  document.body.dataset.current = name;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

export function formatTime(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return '–';
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Service hours as /api/departments gives them ({"mon-fri": ["09:00-12:00", ...], "sat": [...]})
// in words: 周一至周五 09:00-12:00、13:30-17:00；周六 09:00-12:00.
const DAY_KEYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

// The configuration's text form, "mon-fri 09:00-12:00,13:30-17:00; sat 09:00-12:00", as an object.
function parseHoursText(text) {
  const out = {};
  for (const part of String(text).split(';')) {
    const [days, spans = ''] = part.trim().split(/\s+/, 2);
    if (days) out[days] = spans.split(',').filter(Boolean);
  }
  return out;
}

// An element with a class, a test id and text (all optional), and children: el('p', { className:
// 'muted', testid: 'note', text: '…' }, child, …).
export function el(tag, { className = '', testid = '', text = null } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (text !== null) node.textContent = text;
  node.append(...children);
  return node;
}

// A list as the page language writes one: 税务、人社 or Taxation, Human Resources.
export function listJoin(items) {
  return items.join(currentLang() === 'en' ? ', ' : '、');
}

export function formatHours(hours) {
  if (typeof hours === 'string' && hours.trim()) hours = parseHoursText(hours);
  if (!hours || typeof hours !== 'object') return t('hours_none');
  const parts = [];
  for (const [days, spans] of Object.entries(hours)) {
    const names = String(days).split('-').map((d) => (DAY_KEYS.includes(d) ? t(`day_${d}`) : d));
    const label = names.length === 2 ? t('hours_range', { from: names[0], to: names[1] }) : names[0];
    const list = (Array.isArray(spans) ? spans : String(spans || '').split(',')).filter(Boolean);
    const text = list.length
      ? listJoin(list.map((span) => (span === '00:00-24:00' ? t('hours_all_day') : span)))
      : t('hours_rest');
    parts.push(`${label} ${text}`);
  }
  return parts.length ? parts.join(t('hours_sep')) : t('hours_none');
}

// A coming moment for the applicant: weekday, date and time (周三 10-08 09:00).
export function formatMoment(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return '';
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  const day = t(`day_${DAY_KEYS[(d.getDay() + 6) % 7]}`);
  return `${day} ${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// Seconds since an epoch time, for live "longest wait" clocks; never negative.
export function secondsSince(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return null;
  return Math.max(0, Date.now() / 1000 - epochSeconds);
}

// An API error's `detail` as lines of text (a string, a list, or an object of field: problem).
export function detailLines(detail) {
  if (detail === null || detail === undefined || detail === '') return [];
  if (typeof detail === 'string') return [detail];
  if (Array.isArray(detail)) return detail.flatMap((d) => detailLines(d));
  if (typeof detail === 'object') {
    if (detail.msg || detail.message) {
      const where = Array.isArray(detail.loc) ? detail.loc.join('.') : detail.field || detail.loc;
      return [where ? `${where}: ${detail.msg || detail.message}` : String(detail.msg || detail.message)];
    }
    return Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return [String(detail)];
}

// Why a staff member is away: their choice (rest, meeting, other) or `missed` (paused by the server).
export function awayReasonText(reason) {
  if (!reason) return '';
  const key = `away_reason_${reason}`;
  return t(key) === key ? String(reason) : t(key);
}
