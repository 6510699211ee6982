-- Task leases: a task whose RPC is on the wire is leased to the node running its session
-- until lease_until; an expired lease (a killed process, a vanished CPE) returns the task to
-- 'pending' (or 'fault' once its attempts are used up). Tasks that wait for a completion
-- (TransferComplete, M Reboot, ...) wait until waiting_until at most.
ALTER TABLE tasks ADD COLUMN lease_node TEXT;
ALTER TABLE tasks ADD COLUMN lease_until TEXT;
ALTER TABLE tasks ADD COLUMN waiting_until TEXT;
-- Upload tasks: the single-use 128-bit token in the upload URL (NULL once used).
ALTER TABLE tasks ADD COLUMN upload_token TEXT;
-- The CommandKey (or ParameterKey) the RPC was sent with: ours, or the operator's own, which
-- need not be unique across tasks. TransferComplete and M events are matched on it.
ALTER TABLE tasks ADD COLUMN sent_key TEXT;
CREATE INDEX tasks_status_lease ON tasks (status, lease_until);
CREATE INDEX tasks_status_waiting ON tasks (status, waiting_until);
-- CPE passwords are kept only as Digest HA1 values (for the realm they were made with);
-- cpe_password is cleared by the server at start once sealed.
ALTER TABLE devices ADD COLUMN cpe_ha1_md5 TEXT;
ALTER TABLE devices ADD COLUMN cpe_ha1_sha256 TEXT;
ALTER TABLE devices ADD COLUMN cpe_realm TEXT;
