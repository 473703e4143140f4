{#- the longest registered domain looked for: a public suffix of up to 7 labels, plus one -#}
{%- set max_labels = 8 -%}

with

accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

public_suffixes as (

    select
        lower(trim(public_suffix)) as public_suffix,
        lower(trim(rule_type)) as rule_type
    from {{ ref('public_suffixes') }}

),

public_email_domains as (

    select distinct lower(trim(seed.domain)) as email_domain
    from {{ ref('public_email_domains') }} as seed

),

org_domains as (

    select distinct org_domain
    from {{ ref('int_org_addresses') }}
    where org_domain is not null

),

hosts as (

    select
        account_id,
        account_name,
        website,
        {{ url_host('website') }} as website_host
    from accounts

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

registered_domains as (

    select
        account_id,
        case
            {% for n in range(2, max_labels + 1) %}
            when suffix_label_count + 1 = {{ n }} and host_label_count >= {{ n }}
                then {{ last_labels('website_host', n) }}
            {% endfor %}
        end as registered_domain
    from public_suffix_lengths

),

flagged as (

    select
        hosts.account_id,
        hosts.account_name,
        hosts.website,
        hosts.website_host,
        registered_domains.registered_domain,
        public_email_domains.email_domain is not null as is_public_email_domain,
        org_domains.org_domain is not null as is_org_domain,
        case
            when registered_domains.registered_domain is not null
                then count(*) over (partition by registered_domains.registered_domain)
            else 0
        end as accounts_with_domain
    from hosts
    left join registered_domains
        on hosts.account_id = registered_domains.account_id
    left join public_email_domains
        on registered_domains.registered_domain = public_email_domains.email_domain
    left join org_domains
        on registered_domains.registered_domain = org_domains.org_domain

),

final as (

    select
        account_id,
        account_name,
        website,
        website_host,
        registered_domain,
        is_public_email_domain,
        is_org_domain,
        accounts_with_domain,
        coalesce(
            registered_domain is not null
            and not is_public_email_domain
            and not is_org_domain
            and accounts_with_domain = 1,
            false
        ) as is_matchable_domain
    from flagged

)

select * from final
