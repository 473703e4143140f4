{#-
    Helpers for the few models that are materialized incremental because a year of mail of
    2,500 mailboxes makes them the heavy ones (tens of millions of rows): each new build reads
    only what the loader landed since the last one. `dbt build --full-refresh` rebuilds them
    from scratch.
-#}


{#-
    loaded_since_last_build(loaded_at_column, this_loaded_at_column='loaded_at') -> predicate

    In an incremental run: the rows landed after the latest `loaded_at` already in this model.
    The loader stamps each batch it commits with the time of its commit, and dbt and a loader
    never write the warehouse at the same time (DuckDB's single writer), so every row of a
    later load is newer. The latest `loaded_at` is read when the model and its hooks
    are rendered, before any pre-hook deletes a row, so the model and its hooks agree on it;
    it is then a constant the engine can prune the scan with. In a full build, or when this
    model is empty: true.
-#}
{%- macro loaded_since_last_build(loaded_at_column, this_loaded_at_column='loaded_at') -%}
    {%- set watermark = none -%}
    {%- if is_incremental() and execute -%}
        {%- do require_column_of_this(this_loaded_at_column) -%}
        {%- set watermark = max_value_of(this, this_loaded_at_column) -%}
    {%- endif -%}
    {{ landed_after(loaded_at_column, watermark) }}
{%- endmacro -%}


{#-
    max_value_of(relation, column) -> the largest value of `column` in `relation` (a Python
    value), read at compile time; none when the relation is empty or before execution
-#}
{%- macro max_value_of(relation, column) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query("select max(" ~ column ~ ") from " ~ relation).columns[0].values()[0]) }}
{%- endmacro -%}


{#-
    last_build_watermark(model_name) -> the latest `loaded_at` of the model of that name in the
    target schema (looked up by name, not ref(), so that a test using it runs before dbt
    rebuilds that model); none when model_name is none, when the model does not exist yet or
    is empty, or before execution. The data tests that check only what landed since the last
    build use it with landed_after().
-#}
{%- macro last_build_watermark(model_name) -%}
    {%- if not (model_name and execute) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set built = relation_named(model_name) -%}
    {{ return(none if built is none else max_value_of(built, 'loaded_at')) }}
{%- endmacro -%}


{#-
    relation_named(model_name) -> the relation of that name in the target schema, or none
    when it does not exist (yet)
-#}
{%- macro relation_named(model_name) -%}
    {{ return(adapter.get_relation(
        database=target.database, schema=target.schema, identifier=model_name
    )) }}
{%- endmacro -%}


{#-
    landed_after(loaded_at_column, watermark) -> a predicate: the rows landed after
    `watermark` (a timestamp read by max_value_of), or true when there is none
-#}
{%- macro landed_after(loaded_at_column, watermark) -%}
    {%- if watermark is none -%}
    1 = 1
    {%- else -%}
    {{ loaded_at_column }} > {{ dbt.cast("'" ~ watermark ~ "'", dbt.type_timestamp()) }}
    {%- endif -%}
{%- endmacro -%}


{#-
    empty_when_upstream_is_empty(upstream) -> a pre-hook statement

    `remove graph` deletes the landed data; an incremental model would otherwise keep the
    rows it built from it. When `upstream` has no row left, this empties the model before the
    (then empty) increment is applied, so the outputs empty as INTERFACE.md promises.
-#}
{%- macro empty_when_upstream_is_empty(upstream) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where not exists (select 1 from {{ upstream }})
    {%- else -%}
    select 1 as nothing_to_empty
    {%- endif -%}
{%- endmacro -%}


{#-
    delete_landed_rows(source_relation, keys) -> a pre-hook statement

    Before an incremental build of a staging table of a raw table that the loader updates in
    place (one row per key: a changed record replaces its row, a removed one is flagged): deletes
    this model's rows whose key has a raw row landed since this model's last build, so that
    the increment (those raw rows, the removed ones left out) replaces them. `keys` pairs this
    model's columns with the raw table's: [('mailbox_id', '_mailbox_id'), ('event_id', 'id')].
-#}
{%- macro delete_landed_rows(source_relation, keys) -%}
    {%- if is_incremental() -%}
    {%- set these = [] -%}
    {%- set landed = [] -%}
    {%- for this_column, source_column in keys -%}
        {%- do these.extend(([] if loop.first else ["'|'"]) + [this_column]) -%}
        {%- do landed.extend(([] if loop.first else ["'|'"]) + [source_column]) -%}
    {%- endfor -%}
    delete from {{ this }}
    where {{ dbt.concat(these) }} in (
        select {{ dbt.concat(landed) }}
        from {{ source_relation }}
        where {{ loaded_since_last_build('_loaded_at') }}
    )
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro -%}


{#-
    changed_email_ids() -> a select of `internet_message_id`

    The emails with a mailbox copy landed, changed or flagged removed since this model's last
    build (the id as int_email_copies writes it). Incremental email models recompute these
    from all their copies.
-#}
{%- macro changed_email_ids() -%}
    select distinct
        coalesce(
            internet_message_id,
            {{ dbt.concat(["'graph:'", "mailbox_id", "':'", "message_id"]) }}
        ) as internet_message_id
    from {{ ref('stg_graph__messages') }}
    where {{ loaded_since_last_build('loaded_at') }}
    {{ at_most_rows(landed_message_count()) }}
{%- endmacro -%}


{#-
    landed_message_ids() -> a select of `internet_message_id_as_sent`: the ids, as landed, of
    the copies with an `internetMessageId` landed, changed or flagged removed since this
    model's last build. Joined on that plain column, it lets the engine filter its scan of
    the raw messages.
-#}
{%- macro landed_message_ids() -%}
    select distinct internet_message_id_as_sent
    from {{ ref('stg_graph__messages') }}
    where
        {{ loaded_since_last_build('loaded_at') }}
        and internet_message_id is not null
    {{ at_most_rows(landed_message_count()) }}
{%- endmacro -%}


{#-
    landed_message_count() -> how many mailbox copies (rows of stg_graph__messages, removed
    ones included) landed since this model's last build, read at compile time: a bound on the
    ids changed_email_ids() and landed_message_ids() return. None in a full build or before
    execution.
-#}
{%- macro landed_message_count() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select count(*) from {{ ref('stg_graph__messages') }}
        where {{ loaded_since_last_build('loaded_at') }}
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0]) }}
{%- endmacro -%}


{#-
    changed_email_copies() -> a select of int_email_copies rows

    Every copy of the emails changed_email_ids() returns, not only the new ones: the copies
    sharing the `internetMessageId` of a copy landed since this model's last build, matched
    on the column as landed (a plain column, so the engine filters the scan of the raw
    messages with it instead of computing every copy first), plus the new copies without an
    `internetMessageId` (each stands for itself).
-#}
{%- macro changed_email_copies() -%}
    select email_copies.*
    from {{ ref('int_email_copies') }} as email_copies
    inner join ({{ landed_message_ids() }}) as landed
        on email_copies.internet_message_id_as_sent = landed.internet_message_id_as_sent

    union all

    select email_copies.*
    from {{ ref('int_email_copies') }} as email_copies
    where
        {{ loaded_since_last_build('email_copies.loaded_at') }}
        and nullif(email_copies.internet_message_id_as_sent, '') is null
{%- endmacro -%}


{#-
    changed_email_days() -> a select of `sent_date`

    The days of the emails changed_email_ids() returns, as they were and as they are: the
    `sentDateTime` of every copy of them the warehouse holds, the copies flagged removed
    included (the loader keeps a removed copy's fields). A model of accounts' days rebuilds
    these days whole: an email that left a day, or moved out of an account, then leaves no
    row behind. (Graph never changes the `sentDateTime` of a sent message, so a copy that the
    loader replaced had the day its new version has.)
-#}
{%- macro changed_email_days() -%}
    select distinct cast(messages.sent_at as date) as sent_date
    from {{ ref('stg_graph__messages') }} as messages
    inner join ({{ landed_message_ids() }}) as landed
        on messages.internet_message_id_as_sent = landed.internet_message_id_as_sent
    where messages.sent_at is not null

    union

    -- the copies without an internetMessageId, each an email of its own
    select distinct cast(sent_at as date) as sent_date
    from {{ ref('stg_graph__messages') }}
    where
        {{ loaded_since_last_build('loaded_at') }}
        and internet_message_id is null
        and sent_at is not null
{%- endmacro -%}


{#-
    delete_changed_days(column, day_key='sent_date', where=none) -> a pre-hook statement

    Before an incremental build of a model of accounts' days or periods: deletes its rows whose
    `column` is the `day_key` (an expression of `sent_date`, e.g. the month's first day) of a
    day changed_email_days() returns, restricted by `where`, so that the increment rebuilds
    those days whole. Every row when the address rules changed (the model then rebuilds whole).
-#}
{%- macro delete_changed_days(column, day_key='sent_date', where=none) -%}
    {%- if address_rules_changed() -%}
    delete from {{ this }}
    {%- elif is_incremental() -%}
    delete from {{ this }}
    where
        {% if where %}{{ where }} and {% endif %}{{ column }} in (
            select {{ day_key }} from ({{ changed_email_days() }}) as changed_days
        )
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro -%}


{#-
    delete_changed_emails() -> a pre-hook statement

    Before an incremental build of an email model: deletes the rows of the changed emails, so
    that the increment replaces them whole (an email whose copies are all gone, or an address
    no longer on it, then leaves no row behind). A model that keeps only the emails of
    accounts (`keeps_account_emails_only`) is emptied instead when the address rules changed
    (address_rules_changed()): it is then rebuilt whole.
-#}
{%- macro delete_changed_emails(keeps_account_emails_only=false) -%}
    {%- if keeps_account_emails_only and address_rules_changed() -%}
    delete from {{ this }}
    {%- elif is_incremental() -%}
    delete from {{ this }}
    where internet_message_id in ({{ changed_email_ids() }})
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro -%}


{#-
    require_column_of_this(column)

    Stops the build with a sentence naming the fix when this incremental model's table lacks
    `column`: a table built by an older version of this project.
-#}
{%- macro require_column_of_this(column) -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name')
        | map('lower') | list -%}
    {%- if column | lower not in existing -%}
        {{ exceptions.raise_compiler_error(
            this ~ " was built by an older version of this project (it has no column "
            ~ column ~ "): rebuild it once with "
            ~ "`dbt build --full-refresh --select " ~ this.identifier ~ "+`"
        ) }}
    {%- endif -%}
{%- endmacro -%}


{#-
    address_rules_fingerprint() -> a string (an md5), '' before execution

    What decides which account or org user an address belongs to, apart from the addresses
    themselves (int_address_accounts): the org mailboxes' addresses, the CRM contacts' emails,
    the accounts with their registered domains and whether each can match, and
    `domain_matching`. Tens of thousands of rows, read at compile time. A model that keeps
    only the emails of accounts stores it, and rebuilds whole when it changes (a new CRM
    snapshot or a new org mailbox can bring old emails in or take them out). A call must
    sit in a model that depends on the three models it reads.
-#}
{%- macro address_rules_fingerprint() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rule = dbt.concat(["kind", "'|'", "rule_key", "'|'", "rule_value"]) -%}
    {%- set sql -%}
        select {{ dbt.hash(dbt.listagg(rule, "'
'", "order by " ~ rule)) }} as fingerprint
        from (
            select
                'org' as kind,
                org_address as rule_key,
                cast(user_id as {{ dbt.type_string() }}) as rule_value
            from {{ ref('int_org_addresses') }}

            union all

            select
                'contact' as kind,
                email_address as rule_key,
                cast(account_id as {{ dbt.type_string() }}) as rule_value
            from {{ ref('stg_crm__contacts') }}
            where email_address is not null and account_id is not null

            union all

            select
                'account' as kind,
                cast(account_id as {{ dbt.type_string() }}) as rule_key,
                {{ dbt.concat([
                    "coalesce(registered_domain, '')", "'|'",
                    "case when is_matchable_domain then 'matchable' else 'not' end",
                ]) }} as rule_value
            from {{ ref('int_account_domains') }}

            union all

            select
                'var' as kind,
                'domain_matching' as rule_key,
                '{{ var("domain_matching") }}' as rule_value
        ) as rules
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0] or '') }}
{%- endmacro -%}


{#-
    address_rules_changed() -> true when this incremental model was built under other address
    rules than those of now (address_rules_fingerprint(), stored in its `address_rules`
    column); false in a full build or before execution
-#}
{%- macro address_rules_changed() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- do require_column_of_this('address_rules') -%}
    {%- set stored = max_value_of(this, 'address_rules') -%}
    {{ return(stored is not none and stored != address_rules_fingerprint()) }}
{%- endmacro -%}


{#-
    account_email_model(unique_key) -> the config and dependencies of an incremental model that
    keeps only the emails of accounts (int_emails and the models built from it)

    Incremental, delete+insert on `unique_key`, failing on a schema change; before each build
    it empties itself when no message is left (`remove graph`) and deletes the rows of the
    changed emails, or every row when the address rules changed (delete_changed_emails). It
    declares the models address_rules_fingerprint() reads. The model sets
    `increment_only = is_incremental() and not address_rules_changed()` and stores
    `address_rules_fingerprint()` in its `address_rules` column.
-#}
{%- macro account_email_model(unique_key) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=unique_key,
        on_schema_change='fail',
        pre_hook=[
            "{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}",
            "{{ delete_changed_emails(keeps_account_emails_only=true) }}",
        ],
    ) }}
-- depends_on (address_rules_fingerprint): {{ ref('int_org_addresses') }}
-- depends_on (address_rules_fingerprint): {{ ref('stg_crm__contacts') }}
-- depends_on (address_rules_fingerprint): {{ ref('int_account_domains') }}
{# the model's SQL starts on a line of its own #}{{ '\n' }}
{%- endmacro -%}


{#-
    account_days_model(delete_hooks) -> the config and dependencies of an incremental model of
    accounts' days or periods (int_account_email_people_days and what is built from it)

    Incremental, append, failing on a schema change; before each build it empties itself when
    no message is left (`remove graph`), then runs `delete_hooks` (delete_changed_days calls,
    as strings to render at run time). It declares the models address_rules_fingerprint()
    reads. The model sets `increment_only = is_incremental() and not address_rules_changed()`,
    computes only the changed days (changed_email_days()) when it is true, and stores
    `address_rules_fingerprint()` in its `address_rules` column.
-#}
{%- macro account_days_model(delete_hooks) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}"]
            + delete_hooks,
    ) }}
-- depends_on (address_rules_fingerprint): {{ ref('int_org_addresses') }}
-- depends_on (address_rules_fingerprint): {{ ref('stg_crm__contacts') }}
-- depends_on (address_rules_fingerprint): {{ ref('int_account_domains') }}
-- depends_on (changed_email_days): {{ ref('stg_graph__messages') }}
{# the model's SQL starts on a line of its own #}{{ '\n' }}
{%- endmacro -%}


{#-
    landed_rows_model(source_name, table_name, keys) -> the config of an incremental staging
    table of a raw table the loader updates in place (the calendar staging tables): append,
    failing on a schema change; before each build it empties itself when the raw table is
    empty (`remove graph`) and deletes the rows of the keys landed since (delete_landed_rows).
    The model reads only the raw rows landed since its last build (loaded_since_last_build).
-#}
{%- macro landed_rows_model(source_name, table_name, keys) -%}
    {#- the hooks are rendered when they run (a hook rendered at parse time is never
        incremental) -#}
    {%- set raw = "source('" ~ source_name ~ "', '" ~ table_name ~ "')" -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ empty_when_upstream_is_empty(" ~ raw ~ ") }}",
            "{{ delete_landed_rows(" ~ raw ~ ", " ~ (keys | tojson) ~ ") }}",
        ],
    ) }}
{%- endmacro -%}
