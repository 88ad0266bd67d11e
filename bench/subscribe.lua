-- wrk script: POST /api/v1/subscriptions with a different endpoint on every request.
-- Keys are one real P-256 point (validation checks the curve); endpoints vary per thread and request.
local thread_id = 0
local counter = 0
local run = tostring(os.time())

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  p256dh = args[1]
  auth = args[2]
  counter = 0
end

request = function()
  counter = counter + 1
  local endpoint = string.format(
    "https://fcm.googleapis.com/fcm/send/bench%s-%d-%d:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx2tH6pWAjt7lnEiQjp0oGZB7p3Ih9fo0eQyvLkW1Xh2sGm8y5wC7TqBk3l_f2",
    run, tid, counter)
  local body = string.format(
    '{"endpoint":"%s","expirationTime":null,"keys":{"p256dh":"%s","auth":"%s"},"topics":["nasional","olahraga"],"lang":"id"}',
    endpoint, p256dh, auth)
  return wrk.format("POST", "/api/v1/subscriptions", {["Content-Type"] = "application/json"}, body)
end
