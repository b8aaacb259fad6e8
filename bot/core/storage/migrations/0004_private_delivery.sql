-- Hardening (issue 8): the private fallback is an edit of the member's original response.
--
-- private_delivery_at: when a job's result was first shown privately, because its channel
--                      refused it. Set before the edit, so every later edit for the same
--                      request (the original response is one message for all of a request's
--                      jobs) shows this result too, and a restart simply repeats the edit.
ALTER TABLE jobs ADD COLUMN private_delivery_at REAL;
-- A request's jobs share their interaction token.
CREATE INDEX jobs_by_interaction ON jobs (interaction_token);
