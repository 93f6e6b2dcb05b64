-- The queue, presence and dispatch rules of 云诊, run atomically inside Redis.
-- One script, many operations: ARGV[1] names the operation, ARGV[2] is the time (epoch seconds),
-- the rest are the operation's arguments. Key layout: see the top of server/store.py.
-- Operations that change who is rung return events as a flat list of triples
-- {kind, a, b, kind, a, b, ...} for the caller to tell the sockets concerned:
--   ring <ticket> <staff>        a staff member is rung for a ticket
--   withdrawn <ticket> <staff>   a ring was taken back (cancelled, caller gone, timeout)
--   paused <staff> <reason>      a staff member was set away by the server (missed rings)
--   presence <staff> <state>     a staff member's presence changed without their asking
--   ticket <ticket> <status>     a ticket changed status without its applicant asking
--   queue <department> ''        a department's queue changed

local op = ARGV[1]
local now = tonumber(ARGV[2])
local events = {}
local LOG_MAX = 100000
local DECLINE_COOLDOWN = 30
local STAFF_GRACE = 20
local TICKET_GRACE = 60
local PRIORITY_BASE = 0
local ORDINARY_BASE = 1000000000000

local function emit(kind, a, b)
  table.insert(events, kind)
  table.insert(events, a or '')
  table.insert(events, b or '')
end

local function log(event, ticket, dept, staff, detail)
  redis.call('XADD', 'yz:log', 'MAXLEN', '~', LOG_MAX, '*', 'time', tostring(now), 'event', event,
             'ticket', ticket or '', 'department', dept or '', 'staff', staff or '',
             'detail', detail or '')
end

local function num(value, default)
  local n = tonumber(value)
  if n == nil then return default end
  return n
end

local function cfg(dept, name, default)
  return num(redis.call('HGET', 'yz:dept:' .. dept, name), default)
end

local function pools_of(user)
  local out = {}
  local text = redis.call('HGET', 'yz:user:' .. user, 'departments') or ''
  for pool in string.gmatch(text, '[^,]+') do table.insert(out, pool) end
  return out
end

local function conns(kind, id)
  local total = 0
  for _, n in ipairs(redis.call('HVALS', 'yz:conns:' .. kind .. ':' .. id)) do
    total = total + tonumber(n)
  end
  return total
end

-- Presence ------------------------------------------------------------------------------------
local function set_pools(user, since)
  for _, pool in ipairs(pools_of(user)) do
    if since then
      redis.call('ZADD', 'yz:available:' .. pool, since, user)
    else
      redis.call('ZREM', 'yz:available:' .. pool, user)
    end
  end
end

local function make_available(user, since)
  local skey = 'yz:staff:' .. user
  redis.call('HSET', skey, 'presence', 'available', 'since', since, 'ticket', '', 'reason', '')
  redis.call('ZREM', 'yz:wrapup', user)
  -- Someone whose sockets are gone (within the grace period) is not rung until they are back.
  if redis.call('HGET', skey, 'gone') == '1' then
    set_pools(user, nil)
  else
    set_pools(user, since)
  end
end

local function make_unavailable(user, presence, reason)
  set_pools(user, nil)
  redis.call('ZREM', 'yz:wrapup', user)
  redis.call('HSET', 'yz:staff:' .. user, 'presence', presence, 'since', now, 'ticket', '',
             'reason', reason or '')
end

-- After a call: wrap-up for the department's time, then available.
local function after_call(user, dept)
  if conns('staff', user) == 0 then
    make_unavailable(user, 'offline', '')
    emit('presence', user, 'offline')
    return
  end
  local wrap = cfg(dept, 'wrap_up', 10)
  if wrap > 0 then
    set_pools(user, nil)
    redis.call('HSET', 'yz:staff:' .. user, 'presence', 'wrap_up', 'since', now, 'ticket', '',
               'wrap_until', now + wrap)
    redis.call('ZADD', 'yz:wrapup', now + wrap, user)
    emit('presence', user, 'wrap_up')
  else
    make_available(user, now)
    emit('presence', user, 'available')
  end
end

-- Tickets ---------------------------------------------------------------------------------------
local function requeue(tid, rest)
  local tkey = 'yz:ticket:' .. tid
  local dept = redis.call('HGET', tkey, 'department')
  redis.call('ZREM', 'yz:ringing', tid)
  redis.call('HSET', tkey, 'status', 'waiting', 'staff', '', 'rest_until', now + rest)
  redis.call('ZADD', 'yz:queue:' .. dept, tonumber(redis.call('HGET', tkey, 'score')), tid)
  emit('ticket', tid, 'waiting')
  emit('queue', dept, '')
  return dept
end

-- A ring ended without an answer. how: DECLINE, NOANSWER (timeout) or GONE (staff vanished).
local function ring_failed(tid, user, how)
  local tkey = 'yz:ticket:' .. tid
  local dept = redis.call('HGET', tkey, 'department')
  local skey = 'yz:staff:' .. user
  local since = num(redis.call('HGET', skey, 'since'), now)
  -- A ring that timed out rests the ticket (Asterisk's retry); a decline passes it on at once.
  requeue(tid, how == 'NOANSWER' and cfg(dept, 'ring_pause', 5) or 0)
  redis.call('ZADD', tkey .. ':declined', now, user)
  redis.call('EXPIRE', tkey .. ':declined', 86400)
  log(how, tid, dept, user, '')
  if how == 'NOANSWER' then
    local misses = redis.call('HINCRBY', skey, 'misses', 1)
    emit('withdrawn', tid, user)
    if misses >= cfg(dept, 'max_misses', 2) then
      make_unavailable(user, 'away', 'missed')
      log('PAUSE', '', dept, user, 'missed')
      emit('paused', user, 'missed')
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
  local tkey = 'yz:ticket:' .. tid
  local deadline = tonumber(redis.call('ZSCORE', 'yz:ringing', tid))
  return redis.call('HGET', tkey, 'status') == 'ringing'
    and redis.call('HGET', tkey, 'staff') == user
    and deadline ~= nil and deadline > now
end

local function end_ticket(tid, status, event)
  local tkey = 'yz:ticket:' .. tid
  local dept = redis.call('HGET', tkey, 'department')
  local staff = redis.call('HGET', tkey, 'staff') or ''
  if redis.call('HGET', tkey, 'status') == 'ringing' and staff ~= '' then
    redis.call('ZREM', 'yz:ringing', tid)
    make_available(staff, num(redis.call('HGET', 'yz:staff:' .. staff, 'since'), now))
    emit('withdrawn', tid, staff)
  end
  redis.call('ZREM', 'yz:queue:' .. dept, tid)
  redis.call('ZREM', 'yz:ticket_gone', tid)
  redis.call('HSET', tkey, 'status', status, 'ended_at', now, 'staff', '')
  log(event, tid, dept, staff, '')
  emit('ticket', tid, status)
  emit('queue', dept, '')
  return staff
end

-- Dispatch: offer the department's waiting tickets, in order, to the longest-idle available
-- staff member of the pools open to each ticket (its department, then backup tiers by wait).
local function dispatch(dept)
  local qkey = 'yz:queue:' .. dept
  if redis.call('ZCARD', qkey) == 0 then return end
  local dkey = 'yz:dept:' .. dept
  local timeout = cfg(dept, 'ring_timeout', 15)
  local tiers = {}
  for group, after in string.gmatch(redis.call('HGET', dkey, 'tiers') or '', '([^,:]+):([^,]+)') do
    table.insert(tiers, {group, tonumber(after)})
  end
  local function anyone()
    if redis.call('ZCARD', 'yz:available:' .. dept) > 0 then return true end
    for _, tier in ipairs(tiers) do
      if redis.call('ZCARD', 'yz:available:' .. tier[1]) > 0 then return true end
    end
    return false
  end
  if not anyone() then return end
  for _, tid in ipairs(redis.call('ZRANGE', qkey, 0, -1)) do
    local tkey = 'yz:ticket:' .. tid
    local fields = redis.call('HMGET', tkey, 'created_at', 'rest_until', 'overflowed')
    local waited = now - num(fields[1], now)
    if num(fields[2], 0) <= now then
      local pools = {dept}
      for _, tier in ipairs(tiers) do
        if waited >= tier[2] then table.insert(pools, tier[1]) end
      end
      local best, best_since, best_pool = nil, nil, nil
      for _, pool in ipairs(pools) do
        local members = redis.call('ZRANGE', 'yz:available:' .. pool, 0, -1, 'WITHSCORES')
        for i = 1, #members, 2 do
          local user, since = members[i], tonumber(members[i + 1])
          if best_since ~= nil and since >= best_since then break end
          local declined = redis.call('ZSCORE', tkey .. ':declined', user)
          if (not declined) or (now - tonumber(declined) >= DECLINE_COOLDOWN) then
            best, best_since, best_pool = user, since, pool
            break
          end
        end
      end
      if best then
        redis.call('ZREM', qkey, tid)
        redis.call('ZADD', 'yz:ringing', now + timeout, tid)
        redis.call('HSET', tkey, 'status', 'ringing', 'staff', best)
        set_pools(best, nil)
        redis.call('HSET', 'yz:staff:' .. best, 'presence', 'ringing', 'ticket', tid)
        if best_pool ~= dept and fields[3] ~= '1' then
          redis.call('HSET', tkey, 'overflowed', '1')
          log('OVERFLOW', tid, dept, best, best_pool)
        end
        log('RING', tid, dept, best, '')
        emit('ring', tid, best)
        emit('ticket', tid, 'ringing')
        emit('queue', dept, '')
        if not anyone() then return end
      end
    end
  end
end

-- Connections: per-process socket counts, so a dead process's sockets can be discounted.
local function gone_staff(user)
  local skey = 'yz:staff:' .. user
  redis.call('HSET', skey, 'gone', '1')
  set_pools(user, nil)
  redis.call('ZADD', 'yz:staff_gone', now + STAFF_GRACE, user)
  if redis.call('HGET', skey, 'presence') == 'ringing' then
    local tid = redis.call('HGET', skey, 'ticket') or ''
    if tid ~= '' then
      local dept = ring_failed(tid, user, 'GONE')
      emit('withdrawn', tid, user)
      dispatch(dept)
    end
  end
end

local function back_staff(user)
  local skey = 'yz:staff:' .. user
  redis.call('ZREM', 'yz:staff_gone', user)
  if redis.call('HGET', skey, 'gone') == '1' then
    redis.call('HDEL', skey, 'gone')
    if redis.call('HGET', skey, 'presence') == 'available' then
      set_pools(user, num(redis.call('HGET', skey, 'since'), now))
    end
  end
end

local function connection(kind, id, node, delta)
  local key = 'yz:conns:' .. kind .. ':' .. id
  local n = redis.call('HINCRBY', key, node, delta)
  if n <= 0 then
    redis.call('HDEL', key, node)
    redis.call('SREM', 'yz:node:' .. node .. ':' .. kind, id)
  else
    redis.call('SADD', 'yz:node:' .. node .. ':' .. kind, id)
  end
  local total = conns(kind, id)
  if kind == 'staff' then
    if delta > 0 then back_staff(id) elseif total == 0 then gone_staff(id) end
  else
    if delta > 0 then
      redis.call('ZREM', 'yz:ticket_gone', id)
    elseif total == 0 then
      local status = redis.call('HGET', 'yz:ticket:' .. id, 'status')
      if status == 'waiting' or status == 'ringing' then
        redis.call('ZADD', 'yz:ticket_gone', now + TICKET_GRACE, id)
      end
    end
  end
  return total
end

-- Operations ------------------------------------------------------------------------------------
if op == 'enqueue' then
  -- ARGV: tid, dept, priority (0/1), channel, also, token_hash, day
  local tid, dept, priority, channel, also, token_hash, day =
    ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
  local dkey = 'yz:dept:' .. dept
  if redis.call('EXISTS', dkey) == 0 then return {'unknown_department'} end
  local waiting = redis.call('ZCARD', 'yz:queue:' .. dept)
  if waiting >= cfg(dept, 'max_queue', 50) then return {'queue_full'} end
  local seq = redis.call('INCR', 'yz:seq:ticket')
  local lane = priority == '1' and 'B' or 'A'
  local ckey = 'yz:seq:number:' .. dept .. ':' .. lane .. ':' .. day
  local count = redis.call('INCR', ckey)
  redis.call('EXPIRE', ckey, 3 * 86400)
  local number = (redis.call('HGET', dkey, 'prefix') or '') .. lane .. string.format('%03d', count)
  local score = (priority == '1' and PRIORITY_BASE or ORDINARY_BASE) + seq
  redis.call('HSET', 'yz:ticket:' .. tid, 'ticket_id', tid, 'number', number, 'department', dept,
             'status', 'waiting', 'seq', seq, 'score', score, 'priority', priority,
             'channel', channel, 'also', also, 'created_at', now, 'token_hash', token_hash,
             'staff', '', 'room_id', '', 'rest_until', 0)
  redis.call('ZADD', 'yz:queue:' .. dept, score, tid)
  -- Until a socket of the applicant is counted for it, the ticket is on the reconnect grace:
  -- an applicant who left while it was being created does not hold a place for ever.
  redis.call('ZADD', 'yz:ticket_gone', now + TICKET_GRACE, tid)
  log('ENTER', tid, dept, '', priority == '1' and 'priority' or '')
  emit('queue', dept, '')
  dispatch(dept)
  return {'ok', number, events}

elseif op == 'dispatch' then
  dispatch(ARGV[3])
  return events

elseif op == 'presence' then
  -- ARGV: user, state (available|away|offline), reason
  local user, state, reason = ARGV[3], ARGV[4], ARGV[5]
  local skey = 'yz:staff:' .. user
  local current = redis.call('HGET', skey, 'presence') or 'offline'
  if current == 'in_call' or current == 'ringing' then return {'bad_state', current, events} end
  if state == 'available' then
    redis.call('HSET', skey, 'misses', 0)
    if current ~= 'available' then
      make_available(user, now)
      log('UNPAUSE', '', '', user, '')
    end
    for _, pool in ipairs(pools_of(user)) do dispatch(pool) end
  else
    make_unavailable(user, state, reason)
    log('PAUSE', '', '', user, state == 'away' and reason or state)
  end
  return {'ok', state, events}

elseif op == 'accept' then
  local tid, user = ARGV[3], ARGV[4]
  local tkey = 'yz:ticket:' .. tid
  if not still_ringing(tid, user) then
    return 'not_offered'
  end
  redis.call('ZREM', 'yz:ringing', tid)
  redis.call('HSET', tkey, 'status', 'connected', 'connected_at', now)
  redis.call('HSET', 'yz:staff:' .. user, 'presence', 'in_call', 'since', now, 'ticket', tid,
             'misses', 0)
  log('CONNECT', tid, redis.call('HGET', tkey, 'department'), user,
      string.format('%.1f', now - num(redis.call('HGET', tkey, 'created_at'), now)))
  return 'ok'

elseif op == 'decline' then
  local tid, user = ARGV[3], ARGV[4]
  if not still_ringing(tid, user) then
    return {'not_offered', events}
  end
  local dept = ring_failed(tid, user, 'DECLINE')
  dispatch(dept)
  return {'ok', events}

elseif op == 'cancel' then
  local tid = ARGV[3]
  local status = redis.call('HGET', 'yz:ticket:' .. tid, 'status')
  if status ~= 'waiting' and status ~= 'ringing' then return {'bad_state', events} end
  local dept = redis.call('HGET', 'yz:ticket:' .. tid, 'department')
  end_ticket(tid, 'cancelled', 'CANCEL')
  dispatch(dept)
  return {'ok', events}

elseif op == 'finish' then
  -- The consultation is over: the ticket ends, its staff member goes to wrap-up.
  local tid = ARGV[3]
  local tkey = 'yz:ticket:' .. tid
  if redis.call('HGET', tkey, 'status') ~= 'connected' then return {'', events} end
  local dept = redis.call('HGET', tkey, 'department')
  local staff = redis.call('HGET', tkey, 'staff') or ''
  redis.call('HSET', tkey, 'status', 'ended', 'ended_at', now)
  local handled = now - num(redis.call('HGET', tkey, 'connected_at'), now)
  redis.call('LPUSH', 'yz:handled:' .. dept, string.format('%.1f', handled))
  redis.call('LTRIM', 'yz:handled:' .. dept, 0, 49)
  log('COMPLETE', tid, dept, staff, string.format('%.1f', handled))
  emit('ticket', tid, 'ended')
  if staff ~= '' and redis.call('HGET', 'yz:staff:' .. staff, 'ticket') == tid then
    after_call(staff, dept)
  end
  return {staff, events}

elseif op == 'rate' then
  local tkey = 'yz:ticket:' .. ARGV[3]
  local status = redis.call('HGET', tkey, 'status')
  if status ~= 'ended' and status ~= 'connected' then return 'bad_state' end
  if redis.call('HEXISTS', tkey, 'rating') == 1 then return 'bad_state' end
  redis.call('HSET', tkey, 'rating', ARGV[4])
  return 'ok'

elseif op == 'connection' then
  -- ARGV: kind (staff|ticket), id, node, delta (+1|-1)
  local total = connection(ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
  return {total, events}

elseif op == 'heartbeat' then
  -- ARGV: node, ttl
  redis.call('ZADD', 'yz:nodes', now + tonumber(ARGV[4]), ARGV[3])
  return 1

elseif op == 'tick' then
  -- Everything that happens with time: rings that time out, wrap-ups that end, sockets whose
  -- grace period ran out, dead processes, tiers that open, rests that end.
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', 'yz:ringing', '-inf', now)) do
    local user = redis.call('HGET', 'yz:ticket:' .. tid, 'staff') or ''
    if user ~= '' then ring_failed(tid, user, 'NOANSWER') else requeue(tid, 0) end
  end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', 'yz:wrapup', '-inf', now)) do
    make_available(user, now)
    emit('presence', user, 'available')
  end
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', 'yz:nodes', '-inf', now)) do
    for _, kind in ipairs({'staff', 'ticket'}) do
      local nkey = 'yz:node:' .. node .. ':' .. kind
      for _, id in ipairs(redis.call('SMEMBERS', nkey)) do
        local n = num(redis.call('HGET', 'yz:conns:' .. kind .. ':' .. id, node), 0)
        if n > 0 then connection(kind, id, node, -n) end
      end
      redis.call('DEL', nkey)
    end
    -- Calls hosted by the dead process are over.
    local rkey = 'yz:node:' .. node .. ':rooms'
    for _, room in ipairs(redis.call('SMEMBERS', rkey)) do
      local tid = redis.call('HGET', 'yz:room:' .. room, 'ticket_id') or ''
      if tid ~= '' and redis.call('HGET', 'yz:ticket:' .. tid, 'status') == 'connected' then
        local staff = redis.call('HGET', 'yz:ticket:' .. tid, 'staff') or ''
        local dept = redis.call('HGET', 'yz:ticket:' .. tid, 'department')
        redis.call('HSET', 'yz:ticket:' .. tid, 'status', 'ended', 'ended_at', now)
        log('ABANDON', tid, dept, staff, 'server process died')
        emit('ticket', tid, 'ended')
        if staff ~= '' then after_call(staff, dept) end
      end
      redis.call('DEL', 'yz:room:' .. room)
    end
    redis.call('DEL', rkey)
    redis.call('ZREM', 'yz:nodes', node)
  end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', 'yz:staff_gone', '-inf', now)) do
    redis.call('ZREM', 'yz:staff_gone', user)
    if conns('staff', user) == 0 then
      local presence = redis.call('HGET', 'yz:staff:' .. user, 'presence')
      if presence ~= 'in_call' and presence ~= 'offline' then
        make_unavailable(user, 'offline', '')
        log('PAUSE', '', '', user, 'offline')
        emit('presence', user, 'offline')
      end
    end
  end
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', 'yz:ticket_gone', '-inf', now)) do
    redis.call('ZREM', 'yz:ticket_gone', tid)
    local status = redis.call('HGET', 'yz:ticket:' .. tid, 'status')
    if conns('ticket', tid) == 0 and (status == 'waiting' or status == 'ringing') then
      end_ticket(tid, 'abandoned', 'ABANDON')
    end
  end
  for _, dept in ipairs(redis.call('SMEMBERS', 'yz:depts')) do dispatch(dept) end
  return events

elseif op == 'room' then
  -- ARGV: room_id, node, ticket_id, department, staff
  redis.call('HSET', 'yz:room:' .. ARGV[3], 'room_id', ARGV[3], 'node', ARGV[4],
             'ticket_id', ARGV[5], 'department', ARGV[6], 'staff', ARGV[7], 'created_at', now)
  redis.call('SADD', 'yz:node:' .. ARGV[4] .. ':rooms', ARGV[3])
  redis.call('HSET', 'yz:ticket:' .. ARGV[5], 'room_id', ARGV[3])
  return 1

elseif op == 'duty' then
  -- ARGV: pool. Read only: {staff on duty, staff available now} among the pool's members.
  local on_duty, available = 0, 0
  for _, user in ipairs(redis.call('SMEMBERS', 'yz:members:' .. ARGV[3])) do
    local state = redis.call('HMGET', 'yz:staff:' .. user, 'presence', 'gone')
    if state[2] ~= '1' then
      local p = state[1]
      if p == 'available' or p == 'ringing' or p == 'in_call' or p == 'wrap_up' then
        on_duty = on_duty + 1
      end
      if p == 'available' then available = available + 1 end
    end
  end
  return {on_duty, available}

elseif op == 'forget_nodes' then
  -- Every process that used this Redis is gone (the private Redis of a restarted service):
  -- let the next tick clean up after all of them at once.
  for _, node in ipairs(redis.call('ZRANGE', 'yz:nodes', 0, -1)) do
    redis.call('ZADD', 'yz:nodes', 0, node)
  end
  return 1

elseif op == 'room_closed' then
  -- ARGV: room_id
  local node = redis.call('HGET', 'yz:room:' .. ARGV[3], 'node')
  if node then redis.call('SREM', 'yz:node:' .. node .. ':rooms', ARGV[3]) end
  redis.call('DEL', 'yz:room:' .. ARGV[3])
  return 1
end
return redis.error_reply('unknown operation ' .. tostring(op))
