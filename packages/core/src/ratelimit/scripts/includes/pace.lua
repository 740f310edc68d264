--[[
  Adaptive pacing (AIMD on a bucket's rate), the same arithmetic as ../../pace.ts; keep the two in
  step, redis.test.ts checks them against each other on random sequences.

  The pace key (the bucket's, plus ':pace') is a hash: rate, decAt, coolUntil, probeFrom, demandAt,
  congestedAt (ms on the Redis clock; 'n' = never), ceiling (0 = none), streak. Absent means the initial rate. Every script that
  paces takes the parameters as its last argument, "max min initial factor step probeMs" ('' or
  absent: a fixed rate, the pace key is not touched). A pace untouched for 10 minutes expires.
]]

local PACE_IDLE_MS = 600000
local NEVER = -math.huge

local function paceParams(arg)
  if arg == nil or arg == '' then
    return nil
  end
  local v = {}
  for x in string.gmatch(arg, '%S+') do
    v[#v + 1] = tonumber(x)
  end
  return {max = v[1], min = v[2], init = v[3], factor = v[4], step = v[5], probe = v[6]}
end

local function paceClamp(rate, p)
  return math.min(p.max, math.max(p.min, rate))
end

local function paceTime(x)
  if x == nil or x == 'n' then
    return NEVER
  end
  return tonumber(x)
end

local function paceTimeStr(x)
  if x == NEVER then
    return 'n'
  end
  return string.format('%.17g', x)
end

local function paceLoad(key, p, now)
  local h = redis.call('HMGET', key, 'rate', 'decAt', 'coolUntil', 'probeFrom', 'demandAt', 'congestedAt',
    'ceiling', 'streak')
  if not h[1] then
    return {rate = paceClamp(p.init, p), decAt = NEVER, coolUntil = NEVER, probeFrom = now,
            demandAt = NEVER, congestedAt = NEVER, ceiling = 0, streak = 0, fresh = true}
  end
  return {rate = paceClamp(tonumber(h[1]), p), decAt = paceTime(h[2]), coolUntil = paceTime(h[3]),
          probeFrom = paceTime(h[4]), demandAt = paceTime(h[5]), congestedAt = paceTime(h[6]),
          ceiling = tonumber(h[7]) or 0, streak = tonumber(h[8]) or 0}
end

local function paceStore(key, s)
  redis.call('HSET', key, 'rate', string.format('%.17g', s.rate), 'decAt', paceTimeStr(s.decAt),
    'coolUntil', paceTimeStr(s.coolUntil), 'probeFrom', paceTimeStr(s.probeFrom),
    'demandAt', paceTimeStr(s.demandAt), 'congestedAt', paceTimeStr(s.congestedAt),
    'ceiling', string.format('%.17g', s.ceiling), 'streak', tostring(s.streak))
  redis.call('PEXPIRE', key, PACE_IDLE_MS)
end

-- The rate a script computes with: the learned one when pacing, else ARGV's.
local function paceRateOf(key, p, fixed)
  if p == nil then
    return fixed
  end
  local stored = redis.call('HGET', key, 'rate')
  if not stored then
    return paceClamp(p.init, p)
  end
  return paceClamp(tonumber(stored), p)
end

-- Clean intervals at the ceiling before probing past it, and how often the probe's step doubles
-- (pace.ts: PLATEAU, MAX_DOUBLINGS).
local PACE_PLATEAU = 2
local PACE_MAX_DOUBLINGS = 3

-- One clean interval's increase (pace.ts: raise): below the ceiling halfway back to it (at least a
-- step, never past it); at or above it, PLATEAU intervals unchanged, then a step doubling each time.
local function paceRaise(s, p)
  if s.rate < s.ceiling then
    local nextRate = math.min(s.ceiling, s.rate + math.max(p.step, (s.ceiling - s.rate) / 2))
    return math.min(p.max, nextRate), 0
  end
  -- No ceiling yet (no 429 seen): nothing to wait at.
  local plateau = 0
  if s.ceiling > 0 then
    plateau = PACE_PLATEAU
  end
  if s.streak < plateau then
    return s.rate, s.streak + 1
  end
  local nextRate = s.rate + p.step * 2 ^ math.min(s.streak - plateau, PACE_MAX_DOUBLINGS)
  return math.min(p.max, nextRate), s.streak + 1
end

-- One event ('look', 'demand' or 'congestion' with its Retry-After). Changes `s` in place; returns
-- 1 when it increased the rate, -1 when it decreased it, else 0.
local function paceApply(s, now, p, kind, retryAfterMs)
  local adjusted = 0
  if now >= s.probeFrom + p.probe then
    if s.demandAt >= s.probeFrom and s.congestedAt <= s.probeFrom and kind ~= 'congestion'
        and s.rate < p.max then
      local nextRate, streak = paceRaise(s, p)
      if nextRate > s.rate then
        adjusted = 1
      end
      s.rate = nextRate
      s.streak = streak
    end
    s.probeFrom = now
  end
  if kind == 'demand' then
    s.demandAt = now
  elseif kind == 'congestion' then
    local wait = math.max(0, retryAfterMs)
    if now >= s.coolUntil then
      -- A 429 at or below the ceiling: the last cut was not enough; cut twice, lower the ceiling.
      local below = s.rate <= s.ceiling
      local factor = p.factor
      if below then
        factor = p.factor * p.factor
      end
      local cut = math.max(p.min, s.rate * factor)
      if below then
        s.ceiling = (s.rate * (1 + p.factor)) / 2
      else
        s.ceiling = s.rate
      end
      s.streak = 0
      if cut < s.rate then
        adjusted = -1
      end
      s.rate = cut
      s.decAt = now
      s.coolUntil = now + math.max(wait, p.probe)
      -- The next probe interval starts when the cooldown ends (one spent paused shows nothing).
      s.probeFrom = s.coolUntil
    else
      s.coolUntil = math.max(s.coolUntil, s.decAt + wait)
      s.probeFrom = math.max(s.probeFrom, s.coolUntil)
    end
    s.congestedAt = now
  end
  return adjusted
end
