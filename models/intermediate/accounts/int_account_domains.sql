{{ config(materialized='ephemeral') }}

{#- One row per account whose website has a host: the host's registered domain, its public
    suffix (seed `public_suffixes`) plus one label. Ephemeral: int_accounts alone reads it.
    The longest registered domain looked for: a public suffix of up to 7 labels, plus one. -#}
{%- set max_labels = 8 -%}

with

public_suffixes as (

    select
        lower(trim(public_suffix)) as public_suffix,
        lower(trim(rule_type)) as rule_type
    from {{ ref('public_suffixes') }}

),

hosts as (

    select
        account_id,
        {{ url_host('website') }} as website_host
    from {{ ref('stg_crm__accounts') }}

),

measured_hosts as (

    select
        account_id,
        website_host,
        {{ host_labels('website_host') }} as host_label_count
    from hosts
    where website_host is not null

),

candidate_suffixes as (

    -- every ending of the host: acme.co.uk -> uk (1 label), co.uk (2), acme.co.uk (3)
    {% for n in range(1, max_labels + 1) %}
    select
        account_id,
        host_label_count,
        {{ n }} as candidate_label_count,
        {{ last_labels('website_host', n) }} as candidate
    from measured_hosts
    where host_label_count >= {{ n }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

matched_rules as (

    -- Public Suffix List algorithm (publicsuffix.org/list): a normal rule is a public suffix of
    -- its own labels; a wildcard rule (*.ck) makes one more label a public suffix; an
    -- exception rule (!www.ck) makes its parent the public suffix and wins over the others.
    select
        candidate_suffixes.account_id,
        case
            when public_suffixes.rule_type = 'normal'
                then candidate_suffixes.candidate_label_count
            when
                public_suffixes.rule_type = 'wildcard'
                and candidate_suffixes.host_label_count > candidate_suffixes.candidate_label_count
                then candidate_suffixes.candidate_label_count + 1
        end as suffix_label_count,
        case
            when public_suffixes.rule_type = 'exception'
                then candidate_suffixes.candidate_label_count - 1
        end as exception_suffix_label_count
    from candidate_suffixes
    inner join public_suffixes
        on candidate_suffixes.candidate = public_suffixes.public_suffix

),

public_suffix_lengths as (

    select
        measured_hosts.account_id,
        measured_hosts.website_host,
        measured_hosts.host_label_count,
        -- no matching rule: the last label is the public suffix (the list's implicit `*`)
        coalesce(
            max(matched_rules.exception_suffix_label_count),
            max(matched_rules.suffix_label_count),
            1
        ) as suffix_label_count
    from measured_hosts
    left join matched_rules
        on measured_hosts.account_id = matched_rules.account_id
    group by
        measured_hosts.account_id,
        measured_hosts.website_host,
        measured_hosts.host_label_count

),

final as (

    select
        account_id,
        website_host,
        case
            {% for n in range(2, max_labels + 1) %}
            when suffix_label_count + 1 = {{ n }} and host_label_count >= {{ n }}
                then {{ last_labels('website_host', n) }}
            {% endfor %}
        end as registered_domain
    from public_suffix_lengths

)

select * from final
