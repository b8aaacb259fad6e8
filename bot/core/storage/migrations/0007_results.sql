-- Results people act on (issue 10).
--
-- remix_of:          the job whose result a member's button (Reroll, another tier, Edit) or a
--                    shared prompt started this request from; its result says "remix of #N".
-- result_message_id: the channel message that shows the request's images, once posted: the
--                    member's status links to it ("Done — jump to result").
-- create_sent_at:   when the create that made the image was sent: the result says how long
--                    the job waited (until then) apart from how long it was generated (since
--                    then), also for a provider whose create answers with the image.
-- undelivered_told_at: when the member was told, at their next command, that this job
--                    found no route to them (its images wait in /jobs).
ALTER TABLE jobs ADD COLUMN remix_of INTEGER REFERENCES jobs (id) ON DELETE SET NULL;
ALTER TABLE jobs ADD COLUMN result_message_id INTEGER;
ALTER TABLE jobs ADD COLUMN undelivered_told_at REAL;
ALTER TABLE jobs ADD COLUMN create_sent_at REAL;
