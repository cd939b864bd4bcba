/* i18n.js: the one table from the API's error codes (and names) to Chinese.
 *
 * The API speaks English to API users; every screen here speaks Chinese. A message shown to
 * a user comes from this table by the error's code (details such as a wait time are filled
 * in), never from the API's English message. tests/test_workbench.py checks that every
 * code the service can answer with has an entry.
 */

/** Chinese text of each error code; a function receives the error's details. */
export const ERROR_TEXT = {
  // working calendar
  far_date: '日期超出可计算范围（2000—2100 年），请检查日期。',
  // exceptions (延期、缓办、退回、作废), callbacks (回访) and 吹哨报到
  request_pending: '该案件已有待审批的申请，请先审批后再提交新的申请。',
  no_such_request: '该案件没有待审批的此类申请。',
  request_decided: '该申请已被他人审批，页面已更新。',
  approval_needs_higher_role: '审批需由申请人的上级角色办理（例如网格员的申请由社区审批，社区的申请由街道审批）。',
  rework_not_open: '只有回访不满意且在返工期限内的案件才能返工。',
  callback_taken: '该案件本次结案后已回访过。',
  not_closed: '案件尚未结案，结案后才能回访评价。',
  rework_refused: '只有“不满意”时才能要求返工。',
  rework_window_passed: '已超过结案后可要求返工的期限。',
  receipt_not_found: '找不到与此回执链接对应的案件，请核对链接。',
  case_closed: '案件已办结，不能再吹哨。',
  // 三单制 service orders and their registries
  assignee_out_of_area: '只能派给本社区的志愿者或共建单位，请重新选择。',
  name_taken: '已有同名的共建单位，请换一个名称。',
  // accounts and sessions
  login_failed: '账号或密码错误，请重新输入。',
  account_disabled: '此账号已停用，请联系管理员。',
  locked: '账号已暂时锁定，请稍后再试。',
  account_locked: (d) =>
    `登录失败次数过多，账号已暂时锁定${d && d.locked_until ? '，请稍后再试' : ''}。`,
  too_many_requests: (d) =>
    `操作过于频繁，请${d && d.retry_after ? ` ${d.retry_after} 秒后` : '稍后'}再试。`,
  unauthorized: '请先登录工作账号。',
  csrf_failed: '登录状态已过期，请刷新页面后重新登录。',
  forbidden: '您没有权限执行此操作（不在您的管辖范围或角色不允许）。',
  no_person: '您的账号尚未关联人员信息，无法查看分派给您的任务，请联系管理员。',
  // the closed loop
  version_mismatch: '此隐患刚刚已被他人处理，页面已重新载入最新状态。',
  precondition_required: '页面信息已过期，请刷新后再操作。',
  bad_if_match: '页面信息已过期，请刷新后再操作。',
  move_not_allowed: '当前状态下不能执行此操作，页面已更新可执行的操作。',
  reopen_window_passed: (d) =>
    `已超过可重新打开的期限${d && d.reopen_days ? `（结案后 ${d.reopen_days} 天内）` : ''}，请重新上报。`,
  duplicate_target_closed: '所指的原隐患已结案，只能标记为未结隐患的重复件。',
  nowhere_to_escalate: '没有可吹哨的上级网格负责人，请选择一个职能部门。',
  idempotency_key_reused: '重复提交的内容不一致，请重新填写后提交。',
  // reports and photos
  outside_grids: '此位置不在任何网格内，请确认位置。',
  too_many_photos: '照片最多 5 张。',
  photo_too_large: '照片太大，请压缩后再上传。',
  photos_too_large: '本次提交的照片总尺寸太大，请减少照片数量或压缩后再上传。',
  empty_photo: '有一张照片是空文件，请重新选择。',
  corrupt_photo: '有一张照片无法读取（文件已损坏），请重新拍摄或选择。',
  unsupported_photo_type: '照片格式不支持，请使用 JPG、PNG 或 WebP。',
  too_large: '照片太大，请压缩后再上传。',
  body_too_large: '提交的内容太大，请减少照片数量或压缩照片。',
  payload_too_large: '提交的内容太大，请减少照片数量或压缩照片。',
  unsupported_media_type: '照片格式不支持，请使用 JPG、PNG 或 WebP。',
  bad_form: '提交的表单格式有误，请刷新页面后重试。',
  bad_json: '提交的数据格式有误，请刷新页面后重试。',
  // people and their roles on grids
  out_of_scope: '超出您的管辖范围：只能维护您所辖网格内的人员和任职。',
  leader_taken: '该网格已有负责人，请使用“更换”来替换现任负责人。',
  leader_scheduled: '该网格已安排了一次负责人变更，请先结束那条预定任职。',
  already_leader: '此人已是该网格的负责人。',
  already_assigned: '此人在该网格已担任此职务。',
  already_ended: '此任职已经结束。',
  ends_before_start: '结束日期必须晚于开始日期。',
  date_out_of_range: '日期超出范围：请填写 1900 年以后、一年以内的日期。',
  unknown_role: '职务不在职务目录中，请从列表中选择。',
  role_not_for_level: '此职务不能在这一层级的网格任职，请换一个职务。',
  role_not_leading: '此职务不是该层级网格的负责人职务。',
  no_leader_role: '职务目录未规定这一层级网格的负责人职务。',
  grid_retired: '该网格已被重新划定，请在地图上重新选择当前的网格。',
  person_inactive: '此人已标记为不在岗，请先在人员档案中恢复。',
  unchanged: '没有需要保存的修改。',
  person_not_found: '在该网格范围内没有找到此人，请先核对姓名。',
  person_ambiguous: '有多个同名人员，请在列表中选择具体的人。',
  // accounts
  role_too_high: '不能授予高于您自己的角色，也不能管理角色高于您的账号。',
  scope_too_wide: '不能授予超出您管辖范围的权限：请选择您所辖范围内的网格，或您自己拥有的权限。',
  own_account: '不能修改您自己账号的角色、范围或状态，请联系其他管理员。',
  person_already_linked: '此人已关联了另一个账号（每人只能有一个账号）。',
  person_outside_scope: '此人不属于该账号的管辖网格，请在该网格范围内选择人员。',
  assignee_outside_scope: '此人不在您的管辖范围内工作，请派给您所辖网格的人员或某个部门。',
  // field work: visits, patrols, work done offline
  outside_scope: '不在您的管辖范围内，请由所在网格的工作人员办理。',
  bad_recorded_time: '记录时间不正确（在将来，或离线保存过久），请检查手机时间。',
  hazard_needs_location: '随走访上报隐患需要位置，请先定位。',
  order_needs_location: '随走访点单需要位置，请先定位或核对住户地址。',
  track_out_of_order: '轨迹点的时间顺序有误，未能上传。',
  outside_china: '轨迹点不在中国境内，请检查定位和坐标系。',
  track_too_short: '轨迹点太少，未能上传。',
  track_without_movement: '轨迹没有移动，未能上传。',
  too_many_points: '轨迹点太多，请分段上传。',
  bad_patrol_times: '巡查的开始和结束时间与轨迹不符。',
  bad_track: '轨迹数据有误，未能上传。',
  patrol_exists: '此次巡查已上传过。',
  not_gpx: '文件不是 GPX 轨迹，请选择 .gpx 文件。',
  gpx_without_times: 'GPX 轨迹点缺少时间，无法作为巡查轨迹。',
  gpx_bad_time: 'GPX 轨迹点的时间格式有误。',
  // reads and parameters
  not_found: '未找到相应的内容（可能已删除或不在您的管辖范围）。',
  not_ready: '服务尚未就绪（数据库不可用或数据库结构待升级），请稍后再试或联系管理员。',
  no_grid_at_date: '该日期此处尚未划定网格。',
  invalid_parameter: '填写的内容有误，请检查后重试。',
  bad_request: '请求有误，请刷新页面后重试。',
  conflict: '与现有数据冲突，请刷新后重试。',
  import_refused: '文件未通过检查，未导入任何数据。',
  method_not_allowed: '不支持此操作。',
  http_error: '请求失败，请稍后再试。',
  // the service
  database_unavailable: '服务暂时不可用（数据库未连接），请稍后再试。',
  statement_timeout: '查询用时过长，已被中止：请缩短时间段、缩小区域范围或减少数量后重试。',
  internal_error: '服务器内部错误，已记录，请稍后再试。',
  network: '网络连接失败，请检查网络后重试。',
};

const BY_STATUS = {
  400: '请求有误，请刷新页面后重试。',
  401: '请先登录工作账号。',
  403: '您没有权限执行此操作。',
  404: '未找到相应的内容。',
  409: '与当前状态冲突，请刷新后重试。',
  412: ERROR_TEXT.version_mismatch,
  413: ERROR_TEXT.payload_too_large,
  415: ERROR_TEXT.unsupported_media_type,
  422: '填写的内容有误，请检查后重试。',
  423: '账号已暂时锁定，请稍后再试。',
  428: ERROR_TEXT.precondition_required,
  429: '操作过于频繁，请稍后再试。',
  504: ERROR_TEXT.statement_timeout,
};

/** The Chinese message for an error of the API (an ApiError) or of the network. */
export function errorText(err) {
  if (!err) return '操作失败，请稍后再试。';
  const code = err.code || (err.body && err.body.code);
  const details = (err.body && err.body.details) || {};
  const entry = code && ERROR_TEXT[code];
  if (typeof entry === 'function') return entry(details);
  if (entry) return entry;
  if (err.status >= 500) return ERROR_TEXT.internal_error;
  return BY_STATUS[err.status] || '操作失败，请稍后再试。';
}

/** Chinese names of the moves of the closed loop (buttons and history). */
export const ACTION_NAMES = {
  report: '上报',
  accept: '立案',
  reject: '不予立案',
  dispatch: '派遣',
  start: '开始处置',
  resolve: '处置反馈',
  verify: '核查通过',
  fail_verification: '核查不通过（返工）',
  close: '结案',
  escalate: '吹哨',
  reopen: '重新打开',
  mark_duplicate: '标记重复',
  send_back: '申请退回',
  request_extension: '延期申请',
  approve_extension: '同意延期',
  refuse_extension: '不同意延期',
  request_suspension: '缓办申请',
  approve_suspension: '同意缓办',
  refuse_suspension: '不同意缓办',
  resume: '恢复办理',
  approve_send_back: '同意退回',
  refuse_send_back: '不同意退回',
  request_void: '作废申请',
  approve_void: '同意作废',
  refuse_void: '不同意作废',
  callback: '回访',
  rework: '回访不满意返工',
  whistle: '吹哨报到',
  comment: '备注',
};

/** Roles of user accounts. */
export const ROLE_NAMES = {
  admin: '系统管理员',
  street_staff: '街道工作人员',
  community_staff: '社区工作人员',
  grid_leader: '网格长',
  field_staff: '网格员',
  viewer: '只读用户',
};

/** Where a report came from. */
export const SOURCE_NAMES = {
  patrol: '网格巡查',
  resident: '群众上报',
  camera: '视频监控',
  hotline: '12345 热线',
  superior: '上级交办',
};

/** Grid levels (the map config carries the same with colours). */
export const LEVEL_NAMES = {
  street: '街道',
  community: '社区',
  grid: '网格',
  micro_grid: '微网格',
  special: '专属网格',
};

/** Account states. */
export const ACCOUNT_STATES = { active: '正常', disabled: '已停用', locked: '已锁定' };

/** Scopes of API keys. */
export const KEY_SCOPE_NAMES = {
  read: '读取公开数据',
  read_private: '读取辖区内隐私字段',
  report: '上报隐患',
  open311: 'Open311 接口',
  write: '处置隐患',
  dispatch: '受理、派遣、核查、结案',
  export: '导出',
  import: '导入',
};

const PHONE_HELP = '电话号码格式不正确：手机为 11 位（如 13812345678），座机需带区号（如 0371-66123456）。';

/**
 * The Chinese message for a failed form: for a field the API refused (422 with its
 * validation errors), the field's label from labels {field: 标签}; phones get their format.
 */
export function formError(err, labels = {}) {
  const errors = (err && err.body && err.body.details && err.body.details.errors) || [];
  if (err && err.code === 'invalid_parameter' && errors.length) {
    const fields = errors.map((e) => String((e.loc || []).filter((x) => typeof x === 'string').pop() || ''));
    if (fields.some((f) => f.endsWith('phone'))) return PHONE_HELP;
    const named = [...new Set(fields.map((f) => labels[f]).filter(Boolean))];
    if (named.length) return `请检查：${named.join('、')}。`;
  }
  return errorText(err);
}
