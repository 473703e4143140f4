{#-
    sqlfluff stubs: what the project's own macros (macros/*.sql) render to on DuckDB, reduced
    to a shape sqlfluff can parse. dbt never reads this folder; keep the signatures in step
    with macros/.
-#}

{% macro as_of_date() -%}
    cast('2024-06-30' as date)
{%- endmacro %}

{% macro set_duckdb_settings() -%}
{%- endmacro %}

{% macro struct_field(expr, path) -%}
    {{ expr }}{% for field in path.split('.') %}.{{ field }}{% endfor %}
{%- endmacro %}

{% macro unnest_struct_list(list_expr, relation_alias, element_alias, position_alias=none) -%}
    {%- if position_alias is none -%}
    cross join unnest({{ list_expr }}) as {{ relation_alias }} ({{ element_alias }})
    {%- else -%}
    cross join unnest({{ list_expr }}) with ordinality
        as {{ relation_alias }} ({{ element_alias }}, {{ position_alias }})
    {%- endif -%}
{%- endmacro %}

{% macro parse_graph_datetime(expr) -%}
    try_cast({{ expr }} as timestamp)
{%- endmacro %}

{% macro to_utc(datetime_string, time_zone, iana_zone) -%}
    timezone('UTC', timezone({{ iana_zone }}, try_cast({{ datetime_string }} as timestamp)))
{%- endmacro %}

{% macro time_zone_names() -%}
    select
        lower(name) as zone_key,
        name as iana_name
    from pg_timezone_names()
{%- endmacro %}

{% macro loaded_since_last_build(loaded_at_column, this_loaded_at_column='loaded_at') -%}
    {{ loaded_at_column }} > cast('1900-01-01' as timestamp)
{%- endmacro %}

{% macro empty_when_upstream_is_empty(upstream) -%}
    select 1 as nothing_to_empty
{%- endmacro %}

{% macro changed_email_ids() -%}
    select distinct internet_message_id from stg_graph__messages
{%- endmacro %}

{% macro delete_changed_emails(keeps_account_emails_only=false) -%}
    select 1 as nothing_to_delete
{%- endmacro %}

{% macro changed_email_copies() -%}
    select * from int_email_copies
{%- endmacro %}

{% macro account_email_model(unique_key) -%}
{%- endmacro %}

{% macro address_rules_changed() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro address_rules_fingerprint() -%}
    rules
{%- endmacro %}

{% macro window_start_date() -%}
    cast('2023-07-02' as date)
{%- endmacro %}

{% macro period_start(aggregation_level, date_expr) -%}
    greatest(cast(date_trunc('month', {{ date_expr }}) as date), cast('2023-07-02' as date))
{%- endmacro %}

{% macro explode_list(list_expr) -%}
    unnest({{ list_expr }})
{%- endmacro %}

{% macro recipient_addresses(copies, columns, join='', where=none) -%}
    select
        {%- for column in columns %}
        {{ column }},
        {%- endfor %}
        recipient.emailaddress.address as written_address
    from (
        select
            {%- for column in columns %}
            email_copies.{{ column }},
            {%- endfor %}
            unnest(email_copies.to_recipients) as recipient
        from {{ copies }} as email_copies
        {{ join }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
    ) as listed
{%- endmacro %}

{% macro max_value_of(relation, column) -%}
{%- endmacro %}

{% macro landed_after(loaded_at_column, watermark) -%}
    1 = 1
{%- endmacro %}

{% macro account_days_model(delete_hooks) -%}
{%- endmacro %}

{% macro changed_email_days() -%}
select sent_date from stg_graph__messages
{%- endmacro %}

{% macro delete_changed_days(column, day_key='sent_date', where=none) -%}
{%- endmacro %}

{% macro calendar_period_start(level, date_expr) -%}
cast({{ date_expr }} as date)
{%- endmacro %}

{% macro whole_periods_in_window(level) -%}
{{ return(["cast('2024-07-01' as date)", "cast('2025-06-30' as date)"]) }}
{%- endmacro %}

{% macro computed_first() -%}
materialized
{%- endmacro %}

{% macro delete_landed_rows(source_relation, keys) -%}
{%- endmacro %}

{% macro landed_message_ids() -%}
select internet_message_id_as_sent from stg_graph__messages
{%- endmacro %}

{% macro people_per_period(days_relation, days_where) -%}
select account_id, aggregation_level, period_start, org_contacts, account_contacts
from {{ days_relation }}
{%- endmacro %}

{% macro person_side(participants) -%}
{{ participants }}.side
{%- endmacro %}

{% macro person_key(participants) -%}
{{ participants }}.person
{%- endmacro %}

{% macro counts_for_account(participants, interactions) -%}
{{ participants }}.account_id = {{ interactions }}.account_id
{%- endmacro %}

{% macro landed_rows_model(source_name, table_name, keys) -%}
{%- endmacro %}
