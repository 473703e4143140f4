{#- One row per account and period of the window (int_periods) holding a reply of the
    account (int_account_email_replies), placed by the reply's day: the average time the
    account took to reply. Null in int_account_period_figures for the other periods. -#}
with

email_replies as (

    select * from {{ ref('int_account_email_replies') }}

),

periods as (

    select * from {{ ref('int_periods') }}

),

final as (

    -- the question may precede the period, and the window
    select
        email_replies.account_id,
        periods.aggregation_level,
        periods.period_start,
        {{ exact_mean('email_replies.reply_seconds', 3600) }} as average_reply_hours
    from email_replies
    inner join periods
        on email_replies.sent_date between periods.period_start and periods.period_end
    group by
        email_replies.account_id,
        periods.aggregation_level,
        periods.period_start

)

select * from final
