-- Argo CD health of a Revoker revocation (JwksRevocation, AuthMethodRevocation, TokenRevocation),
-- read from its kstatus conditions: Ready -> Healthy, Stalled -> Degraded, held by spec.suspend ->
-- Suspended, anything else (waiting, calling, retrying, not seen yet) -> Progressing.
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function explain(c, status)
  local message = c.message
  if message == nil or message == "" then
    message = status.message or ""
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. message
  end
  return message
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Revoker to observe this revocation"
  return hs
end

local stalled = condition(status, "Stalled")
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")
if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = explain(stalled, status)
elseif is_true(ready) then
  hs.status = "Healthy"
  hs.message = explain(ready, status)
elseif is_true(reconciling) and reconciling.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = explain(reconciling, status)
elseif is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = explain(reconciling, status)
else
  hs.status = "Progressing"
  hs.message = status.message or "Waiting for Revoker"
end
return hs
