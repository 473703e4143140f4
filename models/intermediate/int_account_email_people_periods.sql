{{ account_days_model(delete_hooks=[
    "{{ delete_changed_days('calendar_start', calendar_period_start('Month', 'sent_date'),
        where=\"calendar_level = 'Month'\") }}",
    "{{ delete_changed_days('calendar_start', calendar_period_start('Week', 'sent_date'),
        where=\"calendar_level = 'Week'\") }}",
]) }}

{#- only the months and weeks of the emails landed since the last build, unless the address
    rules changed since -#}
{%- set increment_only = is_incremental() and not address_rules_changed() %}
{%- set month_end = 'cast(' ~ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'calendar_start'))
    ~ ' as date)' %}
{%- set week_end = 'cast(' ~ dbt.dateadd('day', 6, 'calendar_start') ~ ' as date)' %}

with
{%- if increment_only %}

changed_days as (

    {{ changed_email_days() }}

),
{%- endif %}

people_days as (

    select * from {{ ref('int_account_email_people_days') }}
    {%- if increment_only %}
    -- the days of the changed months and weeks (read once here, for both levels)
    where
        {{ calendar_period_start('Month', 'activity_date') }} in (
            select {{ calendar_period_start('Month', 'changed_days.sent_date') }}
            from changed_days
        )
        or {{ calendar_period_start('Week', 'activity_date') }} in (
            select {{ calendar_period_start('Week', 'changed_days.sent_date') }}
            from changed_days
        )
    {%- endif %}

),

people_periods as (

    -- each person once per account and calendar month or ISO week
    {%- for level in ['Month', 'Week'] %}
    select
        account_id,
        '{{ level }}' as calendar_level,
        {{ calendar_period_start(level, 'activity_date') }} as calendar_start,
        side,
        person,
        max(loaded_at) as loaded_at
    from people_days
    {%- if increment_only %}
    -- the changed periods, whole (the pre-hooks deleted their rows here)
    where
        {{ calendar_period_start(level, 'activity_date') }}
        in (select {{ calendar_period_start(level, 'changed_days.sent_date') }} from changed_days)
    {%- endif %}
    group by
        account_id,
        {{ calendar_period_start(level, 'activity_date') }},
        side,
        person
    {%- if not loop.last %}

    union all

    {%- endif %}
    {%- endfor %}

),

final as (

    select
        account_id,
        calendar_level,
        calendar_start,
        case
            when calendar_level = 'Month' then {{ month_end }}
            else {{ week_end }}
        end as calendar_end,
        sum(case when side = 'org' then 1 else 0 end) as org_contacts,
        sum(case when side = 'account' then 1 else 0 end) as account_contacts,
        max(loaded_at) as loaded_at,
        '{{ address_rules_fingerprint() }}' as address_rules
    from people_periods
    group by
        account_id,
        calendar_level,
        calendar_start

)

select * from final
