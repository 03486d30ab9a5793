"""The bus's one Lua script: a group of writes, atomically, unless it was done already.

Every write that is conditional ("unless already done": a mark, a venue point) goes through
GROUP_WRITE; trademesh.core.platform.bus.group builds its KEYS and ARGV, nothing else calls it (a group
without a condition goes as MULTI/EXEC instead). A script runs whole: no other client sees part of
it, and after a crash of the writer it happened entirely or not at all.

KEYS: every key the group touches, so that a Redis Cluster can route it (they must share a slot).
ARGV[1..4], the guard, checked before anything is written:
  ''      ''  ''       ''        none: the writes run
  'mark'  k   token    ''        KEYS[k] absent: the writes run (one of them sets it to token);
                                 it holds token: an earlier attempt of this writer did it all
                                 ('done', nothing runs); anything else: another writer did it
                                 ('taken': the other writes run instead)
  'point' k   epoch    position  the stream KEYS[k]'s last entry holds (fields e, p) this epoch at
                                 this position or past it: 'done', nothing runs
  'number' k  n        ''        KEYS[k] holds n or more: 'done', nothing runs (else the writes
                                 run, one of them sets it to n)
ARGV[5]: where the other writes (those of 'taken') begin in ARGV; past the end when none.
ARGV[6..8], the fence, checked first: '' '' '' none; k token l: the lease KEYS[k]
  (trademesh.core.platform.replicas.lease) must hold token, or hold nothing while its last token
  KEYS[l] is token or gone (nobody acquired it since: any later holder takes it after this write,
  and resumes from what the bus holds then); else nothing runs ('fenced': another holds it, or
  held it since).
From ARGV[9], the writes, each a name, the index of its key in KEYS, and its arguments:
  'xadd' k maxlen age n field value ...  XADD (MAXLEN ~ maxlen unless maxlen is ''), * as the id;
                                 unless age is '', the stream is then trimmed by age too: once
                                 the writes ran, XTRIM MINID ~ (its last new id's ms - age), by
                                 Redis's clock (the ids are its ms), once a stream a call
  'set'  k value ttl                  SET (EX ttl unless ttl is '')
  'hset' k n field value ...          HSET
  'xack' k group n id ...             XACK
Returns {'written', id ...}, {'taken', id ...} (the ids of the XADDs that ran), {'done'} or
{'fenced'}.
"""

from __future__ import annotations

__all__ = ["GROUP_WRITE"]

GROUP_WRITE = """
local CHUNK = 500  -- long HSETs and XACKs go in parts: Lua's unpack has a small stack

local function past_point(stream, epoch, position)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return false end
  local fields, e, p = last[1][2], nil, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then e = fields[i + 1] elseif fields[i] == 'p' then p = fields[i + 1] end
  end
  return e == epoch and p ~= nil and tonumber(p) >= tonumber(position)
end

local function chunked(command, head, first, count)
  for from = first, first + count - 1, CHUNK do
    local call = {command, unpack(head)}
    for i = from, math.min(from + CHUNK, first + count) - 1 do call[#call + 1] = ARGV[i] end
    redis.call(unpack(call))
  end
end

-- Each stream's age trim, after the call's writes: entries older than `age` ms before its
-- newest id (approximate: whole macro-nodes, at most 100 of them a call).
local function trim_by_age(aged)
  for key, cut in pairs(aged) do
    redis.call('XTRIM', key, 'MINID', '~', string.format('%.0f', cut))
  end
end

-- Runs the writes in ARGV[at .. stop - 1]; the XADDs' ids.
local function run(at, stop)
  local ids, aged = {}, {}
  while at < stop do
    local op, key = ARGV[at], KEYS[tonumber(ARGV[at + 1])]
    if op == 'xadd' then
      local call, n = {'XADD', key}, tonumber(ARGV[at + 4])
      if ARGV[at + 2] ~= '' then
        call[3], call[4], call[5] = 'MAXLEN', '~', ARGV[at + 2]
      end
      call[#call + 1] = '*'
      for i = at + 5, at + 4 + 2 * n do call[#call + 1] = ARGV[i] end
      local id = redis.call(unpack(call))
      ids[#ids + 1] = id
      if ARGV[at + 3] ~= '' then
        aged[key] = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[at + 3])
      end
      at = at + 5 + 2 * n
    elseif op == 'set' then
      if ARGV[at + 3] == '' then
        redis.call('SET', key, ARGV[at + 2])
      else
        redis.call('SET', key, ARGV[at + 2], 'EX', ARGV[at + 3])
      end
      at = at + 4
    elseif op == 'hset' then
      local n = tonumber(ARGV[at + 2])
      chunked('HSET', {key}, at + 3, 2 * n)
      at = at + 3 + 2 * n
    elseif op == 'xack' then
      local n = tonumber(ARGV[at + 3])
      chunked('XACK', {key, ARGV[at + 2]}, at + 4, n)
      at = at + 4 + n
    else
      error('group write: no write named ' .. tostring(op))
    end
  end
  trim_by_age(aged)
  return ids
end

local guard, key, others = ARGV[1], KEYS[tonumber(ARGV[2]) or 0], tonumber(ARGV[5])
if ARGV[6] ~= '' then
  local holder = redis.call('GET', KEYS[tonumber(ARGV[6])])
  if holder and holder ~= ARGV[7] then return {'fenced'} end
  if not holder then
    local last = redis.call('GET', KEYS[tonumber(ARGV[8])])
    if last and last ~= ARGV[7] then return {'fenced'} end
  end
end
if guard == 'point' and past_point(key, ARGV[3], ARGV[4]) then
  return {'done'}
end
if guard == 'number' and (tonumber(redis.call('GET', key)) or 0) >= tonumber(ARGV[3]) then
  return {'done'}
end
if guard == 'mark' then
  local held = redis.call('GET', key)
  if held == ARGV[3] then return {'done'} end
  if held then return {'taken', unpack(run(others, #ARGV + 1))} end
end
return {'written', unpack(run(9, others))}
"""
