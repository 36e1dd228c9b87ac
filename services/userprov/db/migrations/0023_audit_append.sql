-- Appending audit entries in the database, inside the statement that writes the change: the
-- writer no longer reads the accounts' heads in a round trip of its own before it writes.
--
-- The caller gives each entry's columns and its canonical form without seq and time, in three
-- parts (userprov.audit.chain.fragments): canonical = head || at || middle || seq || tail. This
-- function locks the entries' accounts' heads (in account order, so that writers of several
-- accounts never deadlock; a head is made for an account's first entry, only if the account
-- exists), reads the time once it holds them (so `at` never goes back as seq grows), numbers and
-- chains the entries in the order given (hash = SHA-256 of the previous hash and the canonical
-- form, as userprov.audit.chain.link), writes them and moves the heads. Entries of an account
-- that does not exist are left out. Returns how many were written.
CREATE FUNCTION audit_append(
    p_account_id text[], p_action text[], p_actor_kind text[], p_actor_id text[], p_target_user_id uuid[],
    p_target_email text[], p_changes text[], p_via text[], p_message_id text[], p_correlation_id text[],
    p_head bytea[], p_middle bytea[], p_tail bytea[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(cardinality(p_account_id), 0);
    v_accounts text[];
    v_seqs bigint[];
    v_hashes bytea[];
    v_at timestamptz;
    v_at_text bytea;
    v_seq bigint[];
    v_hash bytea[];
    k integer;
    written integer := 0;
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    FOR attempt IN 1..2 LOOP
        SELECT array_agg(h.account_id ORDER BY h.account_id), array_agg(h.seq ORDER BY h.account_id),
               array_agg(h.hash ORDER BY h.account_id)
          INTO v_accounts, v_seqs, v_hashes
          FROM (SELECT a.account_id, a.seq, a.hash FROM audit_heads a WHERE a.account_id = ANY(p_account_id)
                ORDER BY a.account_id FOR UPDATE) h;
        EXIT WHEN attempt = 2 OR p_account_id <@ v_accounts;
        -- an account's first entry: its head is made (only if the account exists), in a statement
        -- of its own, so that the lock above, again, sees a head that another transaction made
        -- meanwhile (ON CONFLICT waits for that one to commit)
        INSERT INTO audit_heads (account_id) SELECT a.account_id FROM accounts a WHERE a.account_id = ANY(p_account_id)
            ON CONFLICT DO NOTHING;
    END LOOP;
    IF v_accounts IS NULL THEN
        RETURN 0;
    END IF;
    v_at := clock_timestamp();
    v_at_text := convert_to(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8');
    v_seq := array_fill(NULL::bigint, ARRAY[n]);
    v_hash := array_fill(NULL::bytea, ARRAY[n]);
    FOR i IN 1..n LOOP
        k := array_position(v_accounts, p_account_id[i]);
        CONTINUE WHEN k IS NULL;
        v_seqs[k] := v_seqs[k] + 1;
        v_hashes[k] := sha256(v_hashes[k] || p_head[i] || v_at_text || p_middle[i]
                              || convert_to(v_seqs[k]::text, 'UTF8') || p_tail[i]);
        v_seq[i] := v_seqs[k];
        v_hash[i] := v_hashes[k];
        written := written + 1;
    END LOOP;
    INSERT INTO audit_entries (account_id, seq, at, action, actor_kind, actor_id, target_user_id, target_email, changes,
                               via, message_id, correlation_id, hash)
    SELECT e.account_id, e.seq, v_at, e.action, e.actor_kind, e.actor_id, e.target_user_id, e.target_email,
           e.changes::jsonb, e.via, e.message_id, e.correlation_id, e.hash
      FROM unnest(p_account_id, v_seq, p_action, p_actor_kind, p_actor_id, p_target_user_id, p_target_email, p_changes,
                  p_via, p_message_id, p_correlation_id, v_hash)
           AS e(account_id, seq, action, actor_kind, actor_id, target_user_id, target_email, changes, via, message_id,
                correlation_id, hash)
     WHERE e.seq IS NOT NULL;
    UPDATE audit_heads a SET seq = h.seq, hash = h.hash
      FROM unnest(v_accounts, v_seqs, v_hashes) AS h(account_id, seq, hash)
     WHERE a.account_id = h.account_id AND a.seq <> h.seq;
    RETURN written;
END
$$;
