//! Header aliases: the Chinese column headers found in finance-bureau spreadsheets,
//! mapped to the model's column names. README.md shows this same table.

/// (alias, column). Matching ignores surrounding spaces and ASCII case.
pub const HEADER_ALIASES: &[(&str, &str)] = &[
    ("年度", "year"),
    ("年份", "year"),
    ("部门编码", "dept_code"),
    ("单位编码", "dept_code"),
    ("部门名称", "dept_name"),
    ("单位名称", "dept_name"),
    ("上级部门编码", "parent_code"),
    ("行业", "sector"),
    ("指标编码", "indicator_code"),
    ("指标体系", "framework"),
    ("一级指标", "level1"),
    ("二级指标", "level2"),
    ("三级指标", "level3"),
    ("指标方向", "direction"),
    ("得分", "score"),
    ("分值", "max_score"),
    ("总分", "total_score"),
    ("项目编码", "project_code"),
    ("项目名称", "project_name"),
    ("预算类型", "budget_book"),
    ("项目类型", "kind"),
    ("预算金额", "budget_amount"),
    ("是否设定绩效目标", "has_targets"),
    ("绩效目标已审核", "targets_reviewed"),
    ("绩效目标已公开", "targets_disclosed"),
    ("申报金额", "requested_amount"),
    ("送审金额", "requested_amount"),
    ("审定金额", "approved_amount"),
    ("评审结论", "conclusion"),
    ("评价类型", "eval_kind"),
    ("意见建议条数", "suggestions"),
    ("对象类型", "object_kind"),
    ("对象编码", "object_code"),
    ("计量单位", "unit"),
    ("单位", "unit"),
    ("比较方式", "comparator"),
    ("指标值", "target_value"),
    ("目标值", "target_value"),
    ("实际完成值", "actual_value"),
    ("完成值", "actual_value"),
    ("截至月份", "as_of_month"),
    ("月份", "as_of_month"),
    ("完成情况", "achievement"),
    ("评定得分", "awarded_score"),
    ("完成可能性", "likelihood"),
    ("全年预算数", "budget_amount"),
    ("执行数", "executed_amount"),
    ("累计执行数", "executed_amount"),
    ("问题来源", "source"),
    ("序号", "seq"),
    ("整改事项", "issue"),
    ("整改期限", "due_date"),
    ("完成整改日期", "closed_date"),
    ("整改完成日期", "closed_date"),
    ("预算年度", "budget_year"),
    ("评价年度", "evaluated_year"),
    ("安排金额", "approved_amount"),
    ("应用方式", "action"),
];

/// The model column a header names, if any: either the column name itself or an alias.
pub fn canonical_column(header: &str) -> String {
    let trimmed = header.trim().trim_start_matches('\u{feff}').trim();
    HEADER_ALIASES
        .iter()
        .find(|(alias, _)| *alias == trimmed)
        .map(|(_, column)| column.to_string())
        .unwrap_or_else(|| trimmed.to_ascii_lowercase())
}

/// (column, alias, value): the Chinese words for the enumerated values.
pub const VALUE_ALIASES: &[(&str, &str, &str)] = &[
    ("framework", "部门整体", "dept"),
    ("framework", "部门", "dept"),
    ("framework", "项目", "project"),
    ("direction", "正向", "higher"),
    ("direction", "反向", "lower"),
    ("budget_book", "一般公共预算", "general"),
    ("budget_book", "政府性基金预算", "gov_fund"),
    ("budget_book", "国有资本经营预算", "soe_capital"),
    ("budget_book", "社会保险基金预算", "social_insurance"),
    ("kind", "项目", "project"),
    ("kind", "政策", "policy"),
    ("conclusion", "支持", "support"),
    ("conclusion", "予以支持", "support"),
    ("conclusion", "部分支持", "partial"),
    ("conclusion", "调减支持", "partial"),
    ("conclusion", "不予支持", "reject"),
    ("conclusion", "退回", "returned"),
    ("eval_kind", "自评", "self"),
    ("eval_kind", "绩效自评", "self"),
    ("eval_kind", "绩效监控", "monitoring"),
    ("eval_kind", "财政重点监控", "finance_monitoring"),
    ("eval_kind", "财政重点评价", "finance_evaluation"),
    ("object_kind", "部门", "dept"),
    ("object_kind", "部门整体", "dept"),
    ("object_kind", "项目", "project"),
    ("object_kind", "政策", "project"),
    ("comparator", "≥", ">="),
    ("comparator", "大于等于", ">="),
    ("comparator", "≤", "<="),
    ("comparator", "小于等于", "<="),
    ("comparator", "等于", "="),
    ("comparator", "＝", "="),
    ("comparator", "定性", "qualitative"),
    ("achievement", "达成", "achieved"),
    ("achievement", "已完成", "achieved"),
    ("achievement", "部分达成", "partial"),
    ("achievement", "部分完成", "partial"),
    ("achievement", "未达成", "not_achieved"),
    ("achievement", "未完成", "not_achieved"),
    ("likelihood", "确定能完成", "certain"),
    ("likelihood", "能完成", "certain"),
    ("likelihood", "可能完成", "likely"),
    ("likelihood", "较大可能完成", "likely"),
    ("likelihood", "不能完成", "unlikely"),
    ("likelihood", "难以完成", "unlikely"),
    ("source", "事前绩效评估", "exante"),
    ("source", "事前评估", "exante"),
    ("source", "绩效监控", "monitoring"),
    ("source", "财政重点监控", "monitoring"),
    ("source", "绩效评价", "evaluation"),
    ("source", "财政重点评价", "evaluation"),
    ("source", "部门整体评价", "dept_evaluation"),
    ("action", "优先保障", "prioritise"),
    ("action", "增加", "prioritise"),
    ("action", "维持", "maintain"),
    ("action", "保持", "maintain"),
    ("action", "削减", "cut"),
    ("action", "压减", "cut"),
    ("action", "取消", "cancel"),
];

/// The model value an enumerated cell names: the value itself or its Chinese word.
pub fn canonical_value<'a>(column: &str, text: &'a str) -> &'a str {
    VALUE_ALIASES
        .iter()
        .find(|(c, alias, _)| *c == column && *alias == text)
        .map(|(_, _, value)| *value)
        .unwrap_or(text)
}

/// The allowed values of `column` as a message lists them, each with its Chinese
/// words: `general (一般公共预算), gov_fund (政府性基金预算), …`.
pub fn allowed_list(column: &str, allowed: &[&str]) -> String {
    allowed
        .iter()
        .map(|value| {
            let words: Vec<&str> = VALUE_ALIASES
                .iter()
                .filter(|(c, _, v)| *c == column && v == value)
                .map(|(_, alias, _)| *alias)
                .collect();
            match words.as_slice() {
                [] => value.to_string(),
                words => format!("{value} ({})", words.join("/")),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
