--[[
  A bucket's turn queue (KEYS[2], same hash slot as the bucket): a sorted set of the replicas waiting
  for a grant, each scored by the arrival (Redis clock) of its oldest waiting op. A grant that empties
  the bucket goes to the replica holding the fleet's oldest op, so replicas are served in their ops'
  arrival order.
]]

-- The queue's replicas all wait for the same bucket; an abandoned queue expires with it.
local function enqueue(queue, replica, score, now, tat)
  redis.call('ZADD', queue, score, replica)
  redis.call('PEXPIRE', queue, math.max(60000, math.ceil(tat - now) + 1000))
end

-- The replica whose turn it is, other than `replica`: {id, score} or nil.
local function head(queue, replica)
  local first = redis.call('ZRANGE', queue, 0, 1, 'WITHSCORES')
  if first[1] ~= nil and first[1] ~= replica then
    return {first[1], tonumber(first[2])}
  end
  if first[3] ~= nil then
    return {first[3], tonumber(first[4])}
  end
  return nil
end
