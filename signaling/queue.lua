-- The queue, presence and dispatch rules of 云诊, run atomically inside Redis: one script of named
-- operations (the table `ops` at the end), called with
--   ARGV = {operation, now (epoch seconds), decline_cooldown, staff_grace, ticket_grace,
--           ticket_keep (seconds an ended ticket is kept), the operation's arguments...}
-- (the policy in seconds, from signaling.config.SignalingConfig). Every operation answers the one
-- shape {code, events, facts, value}: a Code (ok, or why nothing changed), the events as
-- {kind, a, b} for the caller to tell the sockets concerned, what those sockets are told as the
-- operation left it (facts, below), and the operation's value (or none):
--   ring <ticket> <staff>        a staff member is rung for a ticket
--   withdrawn <ticket> <staff>   a ring was taken back (cancelled, caller gone, timeout)
--   paused <staff> <reason>      a staff member was set away by the server (missed rings)
--   presence <staff> <state>     a staff member's presence changed without their asking
--   ticket <ticket> <status>     a ticket changed status without its applicant asking
--   queue <department> ''        a department's queue changed
-- facts = {tickets, staff}: each ticket an event names (or the operation asks for) as
--   {ticket_id, its ring deadline or '', its hash as HGETALL gives it}, and each staff member an
--   event names as {username, their state hash, {{pool, waiting, longest-waiting ticket's
--   created_at or '', callback requests}, ...}}: read here, in the same call, so that telling
--   the sockets costs no second round trip per ticket and staff member.
-- K (the key builders; the layout is documented in signaling/keys.py), LANE_SPLIT, LOG_MAXLEN,
-- Presence, TicketStatus, EventKind and Code come from the prelude that signaling/queue.py
-- generates from the Python definitions and puts before this file.

local op_name, now = ARGV[1], tonumber(ARGV[2])
local DECLINE_COOLDOWN = tonumber(ARGV[3])
local STAFF_GRACE = tonumber(ARGV[4])
local TICKET_GRACE = tonumber(ARGV[5])
local TICKET_KEEP = tonumber(ARGV[6])
local FIRST_ARG = 7
local DAY = 86400
local events = {}
-- Tickets an operation's caller reads back besides those its events name (see facts).
local wanted = {}

local function emit(kind, a, b)
  table.insert(events, {kind, a or '', b or ''})
end

-- hall: only ENTER's (the registered kiosk's hall, '' for an anonymous one), for statistics.
local function log(event, ticket, dept, staff, detail, hall)
  if hall then
    redis.call('XADD', K.LOG, 'MAXLEN', '~', LOG_MAXLEN, '*', 'time', tostring(now),
               'event', event, 'ticket', ticket or '', 'department', dept or '',
               'staff', staff or '', 'detail', detail or '', 'hall', hall)
    return
  end
  redis.call('XADD', K.LOG, 'MAXLEN', '~', LOG_MAXLEN, '*', 'time', tostring(now),
             'event', event, 'ticket', ticket or '', 'department', dept or '',
             'staff', staff or '', 'detail', detail or '')
end

local function num(value, default)
  local n = tonumber(value)
  if n == nil then return default end
  return n
end

local function cfg(dept, name, default)
  return num(redis.call('HGET', K.DEPT(dept), name), default)
end

local function pools_of(user)
  local out = {}
  local text = redis.call('HGET', K.USER(user), 'departments') or ''
  for pool in string.gmatch(text, '[^,]+') do table.insert(out, pool) end
  return out
end

local function conns(kind, id)
  local total = 0
  for _, n in ipairs(redis.call('HVALS', K.CONNS(kind, id))) do
    total = total + tonumber(n)
  end
  return total
end

-- Presence ------------------------------------------------------------------------------------
local function set_pools(user, since)
  for _, pool in ipairs(pools_of(user)) do
    if since then
      redis.call('ZADD', K.AVAILABLE(pool), since, user)
    else
      redis.call('ZREM', K.AVAILABLE(pool), user)
    end
  end
end

local function make_available(user, since)
  local skey = K.STAFF(user)
  redis.call('HSET', skey, 'presence', Presence.AVAILABLE, 'since', since, 'ticket', '',
             'reason', '')
  redis.call('ZREM', K.WRAPUP, user)
  -- Someone whose sockets are gone (within the grace period) is not rung until they are back.
  if redis.call('HGET', skey, 'gone') == '1' then
    set_pools(user, nil)
  else
    set_pools(user, since)
  end
end

local function make_unavailable(user, presence, reason)
  set_pools(user, nil)
  redis.call('ZREM', K.WRAPUP, user)
  redis.call('HSET', K.STAFF(user), 'presence', presence, 'since', now, 'ticket', '',
             'reason', reason or '')
end

-- After a call: wrap-up for the department's time, then available.
local function after_call(user, dept)
  if conns('staff', user) == 0 then
    make_unavailable(user, Presence.OFFLINE, '')
    emit(EventKind.PRESENCE, user, Presence.OFFLINE)
    return
  end
  local wrap = cfg(dept, 'wrap_up', 10)
  if wrap > 0 then
    set_pools(user, nil)
    redis.call('HSET', K.STAFF(user), 'presence', Presence.WRAP_UP, 'since', now, 'ticket', '',
               'wrap_until', now + wrap)
    redis.call('ZADD', K.WRAPUP, now + wrap, user)
    emit(EventKind.PRESENCE, user, Presence.WRAP_UP)
  else
    make_available(user, now)
    emit(EventKind.PRESENCE, user, Presence.AVAILABLE)
  end
end

-- Tickets ---------------------------------------------------------------------------------------
local function requeue(tid, rest)
  local tkey = K.TICKET(tid)
  local dept = redis.call('HGET', tkey, 'department')
  redis.call('ZREM', K.RINGING, tid)
  redis.call('HSET', tkey, 'status', TicketStatus.WAITING, 'staff', '', 'rest_until', now + rest)
  redis.call('ZADD', K.QUEUE(dept), tonumber(redis.call('HGET', tkey, 'score')), tid)
  emit(EventKind.TICKET, tid, TicketStatus.WAITING)
  emit(EventKind.QUEUE, dept, '')
  return dept
end

-- A ring ended without an answer. how: DECLINE, NOANSWER (timeout) or GONE (staff vanished).
local function ring_failed(tid, user, how)
  local dept = redis.call('HGET', K.TICKET(tid), 'department')
  local skey = K.STAFF(user)
  local since = num(redis.call('HGET', skey, 'since'), now)
  -- A ring that timed out rests the ticket (Asterisk's retry); a decline passes it on at once.
  requeue(tid, how == 'NOANSWER' and cfg(dept, 'ring_pause', 5) or 0)
  redis.call('ZADD', K.DECLINED(tid), now, user)
  redis.call('EXPIRE', K.DECLINED(tid), DAY)
  log(how, tid, dept, user, '')
  if how == 'NOANSWER' then
    local misses = redis.call('HINCRBY', skey, 'misses', 1)
    emit(EventKind.WITHDRAWN, tid, user)
    if misses >= cfg(dept, 'max_misses', 2) then
      make_unavailable(user, Presence.AWAY, 'missed')
      log('PAUSE', '', dept, user, 'missed')
      emit(EventKind.PAUSED, user, 'missed')
      return dept
    end
  end
  -- Back to the pool, keeping their place by idle time.
  make_available(user, since)
  return dept
end

-- True while ticket tid rings user. A ring past its deadline is over even if no tick has run
-- yet (accept and decline then answer not_offered).
local function still_ringing(tid, user)
  local tkey = K.TICKET(tid)
  local deadline = tonumber(redis.call('ZSCORE', K.RINGING, tid))
  return redis.call('HGET', tkey, 'status') == TicketStatus.RINGING
    and redis.call('HGET', tkey, 'staff') == user
    and deadline ~= nil and deadline > now
end

-- An ended ticket expires TICKET_KEEP seconds from now (the applicant's page may still show and
-- rate it meanwhile); whom it was offered to matters no more.
local function forget_later(tid)
  redis.call('EXPIRE', K.TICKET(tid), TICKET_KEEP)
  redis.call('DEL', K.DECLINED(tid))
end

local function end_ticket(tid, status, event)
  local tkey = K.TICKET(tid)
  local dept = redis.call('HGET', tkey, 'department')
  local staff = redis.call('HGET', tkey, 'staff') or ''
  if redis.call('HGET', tkey, 'status') == TicketStatus.RINGING and staff ~= '' then
    redis.call('ZREM', K.RINGING, tid)
    make_available(staff, num(redis.call('HGET', K.STAFF(staff), 'since'), now))
    emit(EventKind.WITHDRAWN, tid, staff)
  end
  redis.call('ZREM', K.QUEUE(dept), tid)
  redis.call('ZREM', K.TICKET_GONE, tid)
  redis.call('HSET', tkey, 'status', status, 'ended_at', now, 'staff', '')
  forget_later(tid)
  log(event, tid, dept, staff, '')
  emit(EventKind.TICKET, tid, status)
  emit(EventKind.QUEUE, dept, '')
  return staff
end

-- Dispatch: offer the department's waiting tickets, in order, to the longest-idle available
-- staff member of the pools open to each ticket (its department, then backup tiers by wait).
local function tiers_of(dept)
  local tiers = {}
  local text = redis.call('HGET', K.DEPT(dept), 'tiers') or ''
  for group, after in string.gmatch(text, '([^,:]+):([^,]+)') do
    table.insert(tiers, {group, tonumber(after)})
  end
  return tiers
end

-- Anyone available in the department's pool or in one of its tiers' (open or not yet).
local function anyone_available(dept, tiers)
  if redis.call('ZCARD', K.AVAILABLE(dept)) > 0 then return true end
  for _, tier in ipairs(tiers) do
    if redis.call('ZCARD', K.AVAILABLE(tier[1])) > 0 then return true end
  end
  return false
end

-- The pools open to a ticket that has waited `waited` seconds.
local function open_pools(dept, tiers, waited)
  local pools = {dept}
  for _, tier in ipairs(tiers) do
    if waited >= tier[2] then table.insert(pools, tier[1]) end
  end
  return pools
end

-- The longest-idle member of the pools who is not cooling off after declining or missing the
-- ticket, and their pool; nil when there is none.
local function longest_idle(tid, pools)
  local best, best_since, best_pool = nil, nil, nil
  for _, pool in ipairs(pools) do
    local members = redis.call('ZRANGE', K.AVAILABLE(pool), 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
      local user, since = members[i], tonumber(members[i + 1])
      if best_since ~= nil and since >= best_since then break end
      local declined = redis.call('ZSCORE', K.DECLINED(tid), user)
      if (not declined) or (now - tonumber(declined) >= DECLINE_COOLDOWN) then
        best, best_since, best_pool = user, since, pool
        break
      end
    end
  end
  return best, best_pool
end

-- Ring `user`, found in `pool`, for the waiting ticket; the first ring outside the ticket's
-- department is logged as an overflow.
local function ring(tid, dept, user, pool, overflowed, timeout)
  local tkey = K.TICKET(tid)
  redis.call('ZREM', K.QUEUE(dept), tid)
  redis.call('ZADD', K.RINGING, now + timeout, tid)
  redis.call('HSET', tkey, 'status', TicketStatus.RINGING, 'staff', user)
  set_pools(user, nil)
  redis.call('HSET', K.STAFF(user), 'presence', Presence.RINGING, 'ticket', tid)
  if pool ~= dept and overflowed ~= '1' then
    redis.call('HSET', tkey, 'overflowed', '1')
    log('OVERFLOW', tid, dept, user, pool)
  end
  log('RING', tid, dept, user, '')
  emit(EventKind.RING, tid, user)
  emit(EventKind.TICKET, tid, TicketStatus.RINGING)
  emit(EventKind.QUEUE, dept, '')
end

local function dispatch(dept)
  local qkey = K.QUEUE(dept)
  if redis.call('ZCARD', qkey) == 0 then return end
  local timeout = cfg(dept, 'ring_timeout', 15)
  local tiers = tiers_of(dept)
  if not anyone_available(dept, tiers) then return end
  for _, tid in ipairs(redis.call('ZRANGE', qkey, 0, -1)) do
    local fields = redis.call('HMGET', K.TICKET(tid), 'created_at', 'rest_until', 'overflowed')
    if num(fields[2], 0) <= now then
      local user, pool = longest_idle(tid, open_pools(dept, tiers, now - num(fields[1], now)))
      if user then
        ring(tid, dept, user, pool, fields[3], timeout)
        if not anyone_available(dept, tiers) then return end
      end
    end
  end
end

-- Connections: per-process socket counts, so a dead process's sockets can be discounted.
local function gone_staff(user)
  local skey = K.STAFF(user)
  redis.call('HSET', skey, 'gone', '1')
  set_pools(user, nil)
  redis.call('ZADD', K.STAFF_GONE, now + STAFF_GRACE, user)
  if redis.call('HGET', skey, 'presence') == Presence.RINGING then
    local tid = redis.call('HGET', skey, 'ticket') or ''
    if tid ~= '' then
      local dept = ring_failed(tid, user, 'GONE')
      emit(EventKind.WITHDRAWN, tid, user)
      dispatch(dept)
    end
  end
end

local function back_staff(user)
  local skey = K.STAFF(user)
  redis.call('ZREM', K.STAFF_GONE, user)
  if redis.call('HGET', skey, 'gone') == '1' then
    redis.call('HDEL', skey, 'gone')
    if redis.call('HGET', skey, 'presence') == Presence.AVAILABLE then
      set_pools(user, num(redis.call('HGET', skey, 'since'), now))
    end
  end
end

-- A socket of a staff member or ticket (kind) came (delta > 0) or went on a node; the total
-- over all nodes is returned.
local function connection(kind, id, node, delta)
  local key = K.CONNS(kind, id)
  local n = redis.call('HINCRBY', key, node, delta)
  if n <= 0 then
    redis.call('HDEL', key, node)
    redis.call('SREM', K.NODE(node, kind), id)
  else
    redis.call('SADD', K.NODE(node, kind), id)
  end
  local total = conns(kind, id)
  if kind == 'staff' then
    if delta > 0 then back_staff(id) elseif total == 0 then gone_staff(id) end
  elseif kind == 'ticket' then
    if delta > 0 then
      redis.call('ZREM', K.TICKET_GONE, id)
    elseif total == 0 then
      local status = redis.call('HGET', K.TICKET(id), 'status')
      if status == TicketStatus.WAITING or status == TicketStatus.RINGING then
        redis.call('ZADD', K.TICKET_GONE, now + TICKET_GRACE, id)
      end
    end
  end
  return total
end

-- Time: what a tick does, one job each, in this order ------------------------------------------
-- Rings past their deadline: a missed ring (or a ring without staff: back in the queue).
local function expire_rings()
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', K.RINGING, '-inf', now)) do
    local user = redis.call('HGET', K.TICKET(tid), 'staff') or ''
    if user ~= '' then ring_failed(tid, user, 'NOANSWER') else requeue(tid, 0) end
  end
end

local function end_wrap_ups()
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', K.WRAPUP, '-inf', now)) do
    make_available(user, now)
    emit(EventKind.PRESENCE, user, Presence.AVAILABLE)
  end
end

-- A dead process's sockets count no more.
local function drop_sockets_of(node)
  for _, kind in ipairs({'staff', 'ticket', 'address'}) do
    local nkey = K.NODE(node, kind)
    for _, id in ipairs(redis.call('SMEMBERS', nkey)) do
      local n = num(redis.call('HGET', K.CONNS(kind, id), node), 0)
      if n > 0 then connection(kind, id, node, -n) end
    end
    redis.call('DEL', nkey)
  end
end

-- The live process with the fewest rooms (SCARD of its rooms set), or nil when none is left.
local function least_loaded_node(dead)
  local best, fewest = nil, nil
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', K.NODES, '(' .. now, '+inf')) do
    if node ~= dead then
      local n = redis.call('SCARD', K.NODE(node, 'rooms'))
      if fewest == nil or n < fewest then best, fewest = node, n end
    end
  end
  return best
end

-- The calls a dead process hosted: each live room (its ticket CONNECTED) moves to the live
-- process with the fewest rooms, which re-creates it (the adopt set it reads every heartbeat);
-- the ticket stays CONNECTED and the staff member IN_CALL. With `adopt` false, or no live
-- process left, the calls are over; either way the other rooms leave the directory.
local function end_calls_of(node, adopt)
  local rkey = K.NODE(node, 'rooms')
  for _, room in ipairs(redis.call('SMEMBERS', rkey)) do
    local tid = redis.call('HGET', K.ROOM(room), 'ticket_id') or ''
    local live = tid ~= ''
      and redis.call('HGET', K.TICKET(tid), 'status') == TicketStatus.CONNECTED
    local target = live and adopt and least_loaded_node(node) or nil
    if target then
      redis.call('HSET', K.ROOM(room), 'node', target, 'lost_node', node, 'lost_at', now)
      redis.call('SADD', K.NODE(target, 'rooms'), room)
      redis.call('SADD', K.NODE(target, 'adopt'), room)
    elseif live then
      local tkey = K.TICKET(tid)
      local staff = redis.call('HGET', tkey, 'staff') or ''
      local dept = redis.call('HGET', tkey, 'department')
      redis.call('HSET', tkey, 'status', TicketStatus.ENDED, 'ended_at', now)
      forget_later(tid)
      log('ABANDON', tid, dept, staff, 'server process died')
      emit(EventKind.TICKET, tid, TicketStatus.ENDED)
      if staff ~= '' then after_call(staff, dept) end
      redis.call('DEL', K.ROOM(room))
    else
      redis.call('DEL', K.ROOM(room))
    end
  end
  redis.call('DEL', rkey)
  -- Rooms moved to it and not re-created yet were in its rooms set too: they moved on above.
  redis.call('DEL', K.NODE(node, 'adopt'))
end

local function bury(node, adopt)
  drop_sockets_of(node)
  end_calls_of(node, adopt)
  redis.call('ZREM', K.NODES, node)
end

-- Processes whose heartbeat ran out.
local function bury_dead_nodes()
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', K.NODES, '-inf', now)) do
    bury(node, true)
  end
end

-- Staff still without a socket at the end of their grace are offline (unless in a call).
local function expire_staff_graces()
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', K.STAFF_GONE, '-inf', now)) do
    redis.call('ZREM', K.STAFF_GONE, user)
    if conns('staff', user) == 0 then
      local presence = redis.call('HGET', K.STAFF(user), 'presence')
      if presence ~= Presence.IN_CALL and presence ~= Presence.OFFLINE then
        make_unavailable(user, Presence.OFFLINE, '')
        log('PAUSE', '', '', user, 'offline')
        emit(EventKind.PRESENCE, user, Presence.OFFLINE)
      end
    end
  end
end

-- Tickets still without a socket at the end of their grace are abandoned.
local function expire_ticket_graces()
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', K.TICKET_GONE, '-inf', now)) do
    redis.call('ZREM', K.TICKET_GONE, tid)
    local status = redis.call('HGET', K.TICKET(tid), 'status')
    if conns('ticket', tid) == 0
        and (status == TicketStatus.WAITING or status == TicketStatus.RINGING) then
      end_ticket(tid, TicketStatus.ABANDONED, 'ABANDON')
    end
  end
end

-- Every department, for tiers that opened and rests that ended.
local function dispatch_all()
  for _, dept in ipairs(redis.call('SMEMBERS', K.DEPTS)) do dispatch(dept) end
end

-- Operations: each returns a Code and its value (or none) -----------------------------------------
local ops = {}

-- A registered kiosk (device) may hold one open ticket at a time; a revoked one none.
local function device_refusal(device)
  local dkey = K.DEVICE(device)
  local fields = redis.call('HMGET', dkey, 'device_id', 'revoked_at', 'ticket')
  if not fields[1] or fields[2] then return Code.DEVICE_REVOKED end
  if fields[3] then
    local status = redis.call('HGET', K.TICKET(fields[3]), 'status')
    if status == TicketStatus.WAITING or status == TicketStatus.RINGING
        or status == TicketStatus.CONNECTED then
      return Code.DEVICE_BUSY
    end
  end
  return nil
end

-- The open tickets (waiting, ringing, in a call) taken from a client address; ended ones leave
-- its set here.
local function open_tickets_of(address)
  local akey = K.ADDRESS_TICKETS(address)
  local open = 0
  for _, tid in ipairs(redis.call('SMEMBERS', akey)) do
    local status = redis.call('HGET', K.TICKET(tid), 'status')
    if status == TicketStatus.WAITING or status == TicketStatus.RINGING
        or status == TicketStatus.CONNECTED then
      open = open + 1
    else
      redis.call('SREM', akey, tid)
    end
  end
  return open
end

-- address: the client's ('' for a registered kiosk, which is not held to its address's limit);
-- max_open: the open tickets one address may hold (0: no limit); device, hall: the registered
-- kiosk that takes the ticket, and its hall ('' for an anonymous one); booking: the code of the
-- booking (预约) arrived with, '' for none (its window was checked by signaling/bookings.py;
-- here it is used once: the booked lane, after the priority lane, before walk-ins).
-- Value: the hall number.
-- node: the process whose socket asks for the ticket ('' for none): that socket is counted for
-- it in the same step (what ops.connection does).
function ops.enqueue(tid, dept, priority, channel, also, token_hash, day, consent_version,
                     address, max_open, device, hall, booking, node)
  local dkey = K.DEPT(dept)
  if redis.call('EXISTS', dkey) == 0 then return Code.UNKNOWN_DEPARTMENT end
  local bkey = booking ~= '' and K.BOOKING(booking) or nil
  if bkey then
    local fields = redis.call('HMGET', bkey, 'status', 'department')
    if fields[1] ~= 'booked' or fields[2] ~= dept then return Code.BOOKING_USED end
  end
  if device ~= '' then
    local refusal = device_refusal(device)
    if refusal then return refusal end
  end
  max_open = tonumber(max_open)
  if address ~= '' and max_open > 0 and open_tickets_of(address) >= max_open then
    return Code.LIMIT
  end
  local qkey = K.QUEUE(dept)
  if redis.call('ZCARD', qkey) >= cfg(dept, 'max_queue', 50) then return Code.QUEUE_FULL end
  if address ~= '' then
    redis.call('SADD', K.ADDRESS_TICKETS(address), tid)
    redis.call('EXPIRE', K.ADDRESS_TICKETS(address), DAY)
  end
  local seq = redis.call('INCR', K.TICKET_SEQ)
  local lane, base = 'A', LANE_SPLIT
  if priority == '1' then
    lane, base = 'B', 0
  elseif bkey then
    lane, base = 'Y', BOOKED_LANE
  end
  local ckey = K.NUMBER_SEQ(dept, lane, day)
  local count = redis.call('INCR', ckey)
  redis.call('EXPIRE', ckey, 3 * DAY)
  local number = (redis.call('HGET', dkey, 'prefix') or '') .. lane .. string.format('%03d', count)
  local score = base + seq
  redis.call('HSET', K.TICKET(tid), 'ticket_id', tid, 'number', number, 'department', dept,
             'status', TicketStatus.WAITING, 'seq', seq, 'score', score, 'priority', priority,
             'channel', channel, 'also', also, 'created_at', now, 'token_hash', token_hash,
             'staff', '', 'room_id', '', 'rest_until', 0,
             'consent_version', consent_version, 'consent_at', now)
  if device ~= '' then
    redis.call('HSET', K.TICKET(tid), 'device', device, 'hall', hall)
    redis.call('HSET', K.DEVICE(device), 'ticket', tid)
  end
  if bkey then
    redis.call('HSET', K.TICKET(tid), 'booking', booking)
    redis.call('HSET', bkey, 'status', 'arrived', 'ticket_id', tid, 'arrived_at', now)
    redis.call('ZREM', K.BOOKINGS_PENDING, booking)
  end
  redis.call('ZADD', qkey, score, tid)
  if node and node ~= '' then
    connection('ticket', tid, node, 1)
  else
    -- Until a socket of the applicant is counted for it, the ticket is on the reconnect grace:
    -- an applicant who left while it was being created does not hold a place for ever.
    redis.call('ZADD', K.TICKET_GONE, now + TICKET_GRACE, tid)
  end
  log('ENTER', tid, dept, '', priority == '1' and 'priority' or (bkey and 'booked' or ''),
      device ~= '' and hall or '')
  emit(EventKind.QUEUE, dept, '')
  dispatch(dept)
  table.insert(wanted, tid)
  return Code.OK, number
end

function ops.dispatch(dept)
  dispatch(dept)
  return Code.OK
end

-- state: available, away or offline. Value: the presence now (the current one when refused).
function ops.presence(user, state, reason)
  local skey = K.STAFF(user)
  local current = redis.call('HGET', skey, 'presence') or Presence.OFFLINE
  if current == Presence.IN_CALL or current == Presence.RINGING then
    return Code.BAD_STATE, current
  end
  if state == Presence.AVAILABLE then
    redis.call('HSET', skey, 'misses', 0)
    if current ~= Presence.AVAILABLE then
      make_available(user, now)
      log('UNPAUSE', '', '', user, '')
    end
    for _, pool in ipairs(pools_of(user)) do dispatch(pool) end
  else
    make_unavailable(user, state, reason)
    log('PAUSE', '', '', user, state == Presence.AWAY and reason or state)
  end
  return Code.OK, state
end

function ops.accept(tid, user)
  if not still_ringing(tid, user) then return Code.NOT_OFFERED end
  local tkey = K.TICKET(tid)
  redis.call('ZREM', K.RINGING, tid)
  redis.call('HSET', tkey, 'status', TicketStatus.CONNECTED, 'connected_at', now)
  redis.call('HSET', K.STAFF(user), 'presence', Presence.IN_CALL, 'since', now, 'ticket', tid,
             'misses', 0)
  log('CONNECT', tid, redis.call('HGET', tkey, 'department'), user,
      string.format('%.1f', now - num(redis.call('HGET', tkey, 'created_at'), now)))
  return Code.OK
end

function ops.decline(tid, user)
  if not still_ringing(tid, user) then return Code.NOT_OFFERED end
  dispatch(ring_failed(tid, user, 'DECLINE'))
  return Code.OK
end

local function cancel(tid)
  local tkey = K.TICKET(tid)
  local status = redis.call('HGET', tkey, 'status')
  if status ~= TicketStatus.WAITING and status ~= TicketStatus.RINGING then
    return Code.BAD_STATE
  end
  local dept = redis.call('HGET', tkey, 'department')
  end_ticket(tid, TicketStatus.CANCELLED, 'CANCEL')
  dispatch(dept)
  table.insert(wanted, tid)
  return Code.OK
end

-- node: the process whose socket that followed the ticket cancels it ('' for none): that socket
-- is counted out in the same step, whatever the answer.
function ops.cancel(tid, node)
  local code = cancel(tid)
  if node and node ~= '' then connection('ticket', tid, node, -1) end
  return code
end

-- The consultation is over: the ticket ends, its staff member goes to wrap-up. Value: the staff
-- member who had the call.
function ops.finish(tid)
  local tkey = K.TICKET(tid)
  if redis.call('HGET', tkey, 'status') ~= TicketStatus.CONNECTED then return Code.BAD_STATE end
  local dept = redis.call('HGET', tkey, 'department')
  local staff = redis.call('HGET', tkey, 'staff') or ''
  redis.call('HSET', tkey, 'status', TicketStatus.ENDED, 'ended_at', now)
  forget_later(tid)
  local handled = now - num(redis.call('HGET', tkey, 'connected_at'), now)
  redis.call('LPUSH', K.HANDLED(dept), string.format('%.1f', handled))
  redis.call('LTRIM', K.HANDLED(dept), 0, 49)
  log('COMPLETE', tid, dept, staff, string.format('%.1f', handled))
  emit(EventKind.TICKET, tid, TicketStatus.ENDED)
  if staff ~= '' and redis.call('HGET', K.STAFF(staff), 'ticket') == tid then
    after_call(staff, dept)
  end
  return Code.OK, staff
end

-- ...: department, score pairs, each department once (checked by the caller). Only the
-- departments that took part may be rated (the ticket's own, and those whose 会商 invitee joined:
-- field joined:<dept>), once per ticket; one RATE entry per department in the queue log, with
-- whoever served for it. The ticket's `rating` is the lowest score given. Value: the staff per
-- department, in order; NOT_PARTICIPANT with the department that did not take part.
function ops.rate(tid, ...)
  local pairs_ = {...}
  local tkey = K.TICKET(tid)
  local status = redis.call('HGET', tkey, 'status')
  if status ~= TicketStatus.ENDED and status ~= TicketStatus.CONNECTED then
    return Code.BAD_STATE
  end
  if redis.call('HEXISTS', tkey, 'rating') == 1 then return Code.BAD_STATE end
  local own = redis.call('HGET', tkey, 'department')
  local served = {}
  for i = 1, #pairs_, 2 do
    local dept = pairs_[i]
    local staff
    if dept == own then
      staff = redis.call('HGET', tkey, 'staff') or ''
    else
      staff = redis.call('HGET', tkey, 'joined:' .. dept)
      if not staff then return Code.NOT_PARTICIPANT, dept end
    end
    served[#served + 1] = staff
  end
  local lowest = 6
  for i = 1, #pairs_, 2 do
    local score = tonumber(pairs_[i + 1])
    redis.call('HSET', tkey, 'rating:' .. pairs_[i], score)
    log('RATE', tid, pairs_[i], served[(i + 1) / 2], tostring(score))
    if score < lowest then lowest = score end
  end
  redis.call('HSET', tkey, 'rating', lowest, 'rated_at', now)
  return Code.OK, served
end

-- kind: staff or ticket; delta: +1 or -1. Value: that one's sockets on all nodes.
function ops.connection(kind, id, node, delta)
  return Code.OK, connection(kind, id, node, tonumber(delta))
end

-- Value: 1 when `node` was not registered (its first heartbeat, or it was buried meanwhile: a
-- process stopped for longer than the TTL, whose rooms have moved on), else 0.
function ops.heartbeat(node, ttl)
  return Code.OK, redis.call('ZADD', K.NODES, now + tonumber(ttl), node)
end

-- Everything that happens with time. sweep: '1' to bury the processes whose heartbeat ran out
-- ('0' for a while after a Redis outage, when every heartbeat ran out and the live processes
-- have not all renewed theirs yet). `node`, the ticking process, is alive: its heartbeat is
-- renewed first (if it is still registered), so that a process that was stopped for longer than
-- the TTL and wakes up does not bury itself before its heartbeat task runs.
function ops.tick(sweep, node, ttl)
  if node and node ~= '' and redis.call('ZSCORE', K.NODES, node) then
    redis.call('ZADD', K.NODES, now + tonumber(ttl), node)
  end
  expire_rings()
  end_wrap_ups()
  if sweep == '1' then bury_dead_nodes() end
  expire_staff_graces()
  expire_ticket_graces()
  dispatch_all()
  return Code.OK
end

-- A room of `node` serves the ticket from now on (the room directory's entry). The first node
-- to write it owns the room: another one (a node that opened it after the placing node gave up
-- waiting for it) gets BAD_STATE and the owner, and does not open it.
function ops.room(room_id, node, tid, dept, staff)
  local owner = redis.call('HGET', K.ROOM(room_id), 'node')
  if owner and owner ~= node then return Code.BAD_STATE, owner end
  redis.call('HSET', K.ROOM(room_id), 'room_id', room_id, 'node', node, 'ticket_id', tid,
             'department', dept, 'staff', staff, 'created_at', now)
  redis.call('SADD', K.NODE(node, 'rooms'), room_id)
  redis.call('HSET', K.TICKET(tid), 'room_id', room_id)
  return Code.OK
end

function ops.room_closed(room_id)
  local node = redis.call('HGET', K.ROOM(room_id), 'node')
  if node then
    redis.call('SREM', K.NODE(node, 'rooms'), room_id)
    redis.call('SREM', K.NODE(node, 'adopt'), room_id)
  end
  redis.call('DEL', K.ROOM(room_id))
  return Code.OK
end

-- A /kiosk socket of a client address came (delta +1) or went (-1) on a node; one more than
-- `maximum` (0: no limit) is refused with LIMIT. Value: the address's sockets on all nodes.
function ops.address_socket(address, node, delta, maximum)
  delta, maximum = tonumber(delta), tonumber(maximum)
  if delta > 0 and maximum > 0 and conns('address', address) >= maximum then
    return Code.LIMIT, conns('address', address)
  end
  return Code.OK, connection('address', address, node, delta)
end

-- Read only. Value: {staff on duty, staff available now} among the pool's members.
function ops.duty(pool)
  local on_duty, available = 0, 0
  for _, user in ipairs(redis.call('SMEMBERS', K.MEMBERS(pool))) do
    local state = redis.call('HMGET', K.STAFF(user), 'presence', 'gone')
    if state[2] ~= '1' then
      local p = state[1]
      if p == Presence.AVAILABLE or p == Presence.RINGING or p == Presence.IN_CALL
          or p == Presence.WRAP_UP then
        on_duty = on_duty + 1
      end
      if p == Presence.AVAILABLE then available = available + 1 end
    end
  end
  return Code.OK, {on_duty, available}
end

-- Redis was unreachable and answers again; `node` saw it. First its heartbeat, so that no
-- process takes it for dead; then its sockets are counted from the ones it really has (JSON
-- objects id -> count, per kind: staff members, tickets, client addresses): a socket that left
-- during the outage could not say so, one that stayed must keep its staff member or ticket.
-- Nobody could act during the outage, so it is not held against anyone: the grace periods start
-- again, and rings that ran out go back to the queue without counting as missed. Not when `node`
-- was buried meanwhile (its heartbeat gone, or `buried` '1': the heartbeat that found it so
-- registered it again): the others reached Redis and kept the clocks then, so `node` alone was
-- cut off (or stopped). Idempotent: every process that saw the outage calls it.
local function recount(node, kind, live)
  for _, id in ipairs(redis.call('SMEMBERS', K.NODE(node, kind))) do
    if live[id] == nil then
      local n = num(redis.call('HGET', K.CONNS(kind, id), node), 0)
      if n > 0 then
        connection(kind, id, node, -n)
      else
        redis.call('SREM', K.NODE(node, kind), id)
      end
    end
  end
  for id, n in pairs(live) do
    local have = num(redis.call('HGET', K.CONNS(kind, id), node), 0)
    if n ~= have then connection(kind, id, node, n - have) end
    if kind == 'staff' then
      back_staff(id)
    elseif kind == 'ticket' then
      redis.call('ZREM', K.TICKET_GONE, id)
    end
  end
end

local function renew_graces(key, grace)
  local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    if tonumber(entries[i + 1]) < now + grace then
      redis.call('ZADD', key, now + grace, entries[i])
    end
  end
end

local function rings_lost()
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', K.RINGING, '-inf', now)) do
    local user = redis.call('HGET', K.TICKET(tid), 'staff') or ''
    local dept = requeue(tid, 0)
    if user ~= '' then
      log('NOANSWER', tid, dept, user, 'redis outage')
      make_available(user, num(redis.call('HGET', K.STAFF(user), 'since'), now))
      emit(EventKind.WITHDRAWN, tid, user)
      emit(EventKind.PRESENCE, user, Presence.AVAILABLE)
    end
  end
end

-- Value: as heartbeat's (1: `node` was buried meanwhile, by processes that could still reach
-- Redis).
function ops.outage_over(node, ttl, staff, tickets, addresses, buried)
  local fresh = redis.call('ZADD', K.NODES, now + tonumber(ttl), node)
  local everybody = fresh == 0 and buried ~= '1'
  if everybody then
    renew_graces(K.STAFF_GONE, STAFF_GRACE)
    renew_graces(K.TICKET_GONE, TICKET_GRACE)
  end
  recount(node, 'staff', cjson.decode(staff))
  recount(node, 'ticket', cjson.decode(tickets))
  recount(node, 'address', cjson.decode(addresses))
  if everybody then rings_lost() end
  return Code.OK, fresh
end

-- Every process that used this Redis is gone (the private Redis of a restarted service): their
-- calls are over (none of them is left to move them to), their sockets count no more.
function ops.forget_nodes()
  for _, node in ipairs(redis.call('ZRANGE', K.NODES, 0, -1)) do bury(node, false) end
  return Code.OK
end

-- The facts of the reply (see the top of this file) -------------------------------------------
-- The created_at (as stored) of the head of one lane of a queue, or nil.
local function lane_head(qkey, low, high)
  local head = redis.call('ZRANGEBYSCORE', qkey, low, high, 'LIMIT', 0, 1)[1]
  if not head then return nil end
  return redis.call('HGET', K.TICKET(head), 'created_at') or nil
end

local function pools_overview(user)
  local out = {}
  local split = string.format('%.0f', LANE_SPLIT)
  for _, pool in ipairs(pools_of(user)) do
    local qkey = K.QUEUE(pool)
    local longest = lane_head(qkey, '-inf', '(' .. split)
    local ordinary = lane_head(qkey, split, '+inf')
    if ordinary and (not longest or tonumber(ordinary) < tonumber(longest)) then
      longest = ordinary
    end
    table.insert(out, {pool, redis.call('ZCARD', qkey), longest or '',
                       redis.call('HLEN', K.CALLBACKS(pool))})
  end
  return out
end

local function facts()
  local tickets, staff, seen = {}, {}, {}
  local function ticket(tid)
    if seen['t' .. tid] then return end
    seen['t' .. tid] = true
    table.insert(tickets, {tid, redis.call('ZSCORE', K.RINGING, tid) or '',
                           redis.call('HGETALL', K.TICKET(tid))})
  end
  local function person(user)
    if seen['s' .. user] then return end
    seen['s' .. user] = true
    table.insert(staff, {user, redis.call('HGETALL', K.STAFF(user)), pools_overview(user)})
  end
  for _, tid in ipairs(wanted) do ticket(tid) end
  for _, e in ipairs(events) do
    local kind = e[1]
    if kind == EventKind.RING or kind == EventKind.WITHDRAWN then
      ticket(e[2])
      person(e[3])
    elseif kind == EventKind.TICKET then
      ticket(e[2])
    elseif kind == EventKind.PAUSED or kind == EventKind.PRESENCE then
      person(e[2])
    end
  end
  return {tickets, staff}
end

local operation = ops[op_name]
if operation == nil then return redis.error_reply('unknown operation ' .. tostring(op_name)) end
local code, value = operation(unpack(ARGV, FIRST_ARG))
return {code, events, facts(), value}
