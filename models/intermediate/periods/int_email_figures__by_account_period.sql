{#- One row per account and period of the window (Year, Month, Week, as int_periods cuts
    them) holding an email to or from the account: the emails in each direction and the day of
    the last one. int_account_period_figures zero-fills the other periods. -#}
with

email_interactions as (

    select * from {{ ref('int_email_account_interactions') }}
    where
        not is_day_row
        -- the window's bounds as constants, which the engine prunes with
        and sent_date between {{ window_start_date() }} and {{ as_of_date() }}

),

email_days as (

    -- per account and day first, then each day in its periods
    select
        account_id,
        sent_date,
        sum(case when is_to_account then 1 else 0 end) as emails_to_account,
        sum(case when is_from_account then 1 else 0 end) as emails_from_account
    from email_interactions
    group by
        account_id,
        sent_date

),

final as (
    {%- for level in ['Year', 'Month', 'Week'] %}

    -- a day's period found by its first day (period_start), not by a range join
    select
        account_id,
        '{{ level }}' as aggregation_level,
        {{ period_start(level, 'sent_date') }} as period_start,
        sum(emails_to_account) as emails_to_account,
        sum(emails_from_account) as emails_from_account,
        max(sent_date) as last_email_date_in_period
    from email_days
    group by
        account_id,
        {{ period_start(level, 'sent_date') }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

)

select * from final
