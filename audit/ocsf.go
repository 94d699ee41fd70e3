package audit

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// OCSFVersion is the OCSF schema version the OCSF format follows.
const OCSFVersion = "1.5.0"

// OCSF ids used by the mapping.
const (
	ocsfCategoryIAM  = 3
	ocsfClassBase    = 0
	ocsfClassAuthz   = 3003 // Authorize Session
	ocsfClassAccess  = 3005 // User Access Management
	ocsfActivityOthr = 99

	ocsfAssignPrivileges = 1 // in both Authorize Session and User Access Management
	ocsfRevokePrivileges = 2 // User Access Management

	ocsfSeverityInformational = 1
	ocsfSeverityLow           = 2
	ocsfSeverityMedium        = 3
	ocsfSeverityHigh          = 4

	ocsfStatusSuccess = 1
	ocsfStatusFailure = 2
)

var (
	ocsfSeverityNames = map[int]string{1: "Informational", 2: "Low", 3: "Medium", 4: "High"}
	ocsfStatusNames   = map[int]string{1: "Success", 2: "Failure"}
	ocsfClassNames    = map[int]string{ocsfClassBase: "Base Event", ocsfClassAuthz: "Authorize Session", ocsfClassAccess: "User Access Management"}
	ocsfCategoryNames = map[int]string{0: "Uncategorized", ocsfCategoryIAM: "Identity & Access Management"}
)

// ocsfEvent is one OCSF event. Field order follows the OCSF attribute
// groups: classification, occurrence, primary, context.
type ocsfEvent struct {
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`

	Time int64 `json:"time"`

	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message"`
	Actor        *ocsfActor     `json:"actor,omitempty"`
	User         *ocsfUser      `json:"user,omitempty"`
	Privileges   []string       `json:"privileges,omitempty"`
	Resources    []ocsfResource `json:"resources,omitempty"`

	Metadata ocsfMetadata        `json:"metadata"`
	Unmapped store.ExportedEvent `json:"unmapped"`
}

type ocsfActor struct {
	User ocsfUser `json:"user"`
}

type ocsfUser struct {
	UID   string `json:"uid"`
	Email string `json:"email_addr,omitempty"`
}

type ocsfResource struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type ocsfMetadata struct {
	UID            string      `json:"uid"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
	Version        string      `json:"version"`
	Product        ocsfProduct `json:"product"`
	LogName        string      `json:"log_name"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// ocsfClass is where a kind of event lands in OCSF.
type ocsfClass struct {
	class, activity int
	activityName    string
	status          int
	severity        int
}

var ocsfClasses = map[string]ocsfClass{
	workflow.KindApproved:           {ocsfClassAuthz, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusSuccess, ocsfSeverityInformational},
	workflow.KindDenied:             {ocsfClassAuthz, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusFailure, ocsfSeverityInformational},
	workflow.KindGrantActive:        {ocsfClassAccess, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusSuccess, ocsfSeverityInformational},
	workflow.KindGrantRefreshed:     {ocsfClassAccess, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusSuccess, ocsfSeverityInformational},
	workflow.KindGrantFailed:        {ocsfClassAccess, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusFailure, ocsfSeverityLow},
	workflow.KindGrantRefreshFailed: {ocsfClassAccess, ocsfAssignPrivileges, "Assign Privileges", ocsfStatusFailure, ocsfSeverityLow},
	workflow.KindGrantRevoked:       {ocsfClassAccess, ocsfRevokePrivileges, "Revoke Privileges", ocsfStatusSuccess, ocsfSeverityInformational},
	workflow.KindGrantRevokeFailed:  {ocsfClassAccess, ocsfRevokePrivileges, "Revoke Privileges", ocsfStatusFailure, ocsfSeverityHigh},
	workflow.KindRefused:            {ocsfClassAuthz, ocsfActivityOthr, "Other", ocsfStatusFailure, ocsfSeverityLow},
	// Drift: access in a target that latch's grants do not account for.
	"drift.leftover":      {ocsfClassAccess, ocsfRevokePrivileges, "Revoke Privileges", ocsfStatusFailure, ocsfSeverityMedium},
	"drift.unmanaged":     {ocsfClassAccess, ocsfActivityOthr, "Other", ocsfStatusFailure, ocsfSeverityMedium},
	"drift.removed":       {ocsfClassAccess, ocsfRevokePrivileges, "Revoke Privileges", ocsfStatusSuccess, ocsfSeverityLow},
	"drift.remove_failed": {ocsfClassAccess, ocsfRevokePrivileges, "Revoke Privileges", ocsfStatusFailure, ocsfSeverityHigh},
}

// classOf returns where a kind lands: the table above, or else Other in
// Authorize Session for the other request events, in User Access
// Management for the other grant events, and in Base Event for the rest.
func classOf(kind string) ocsfClass {
	if c, ok := ocsfClasses[kind]; ok {
		return c
	}
	c := ocsfClass{ocsfClassBase, ocsfActivityOthr, "Other", ocsfStatusSuccess, ocsfSeverityInformational}
	switch {
	case strings.HasPrefix(kind, "request."):
		c.class = ocsfClassAuthz
	case strings.HasPrefix(kind, "grant."):
		c.class = ocsfClassAccess
	}
	return c
}

// escalates says which kinds become Medium for a break-glass request.
var escalates = map[string]bool{
	workflow.KindSubmitted:   true,
	workflow.KindApproved:    true,
	workflow.KindGrantActive: true,
}

// ocsfPayload holds the payload fields the mapping reads, from any kind.
type ocsfPayload struct {
	Beneficiary string                 `json:"beneficiary"`
	BreakGlass  bool                   `json:"breakglass"`
	Targets     []workflow.Target      `json:"targets"` // request.submitted
	Grants      []workflow.GrantTarget `json:"grants"`  // request.approved
	Reason      string                 `json:"reason"`  // request.denied, request.refused
	Error       string                 `json:"error"`   // grant failures
	Email       string                 `json:"email"`   // grant.active
}

// toOCSF maps one event; requests, if not nil, names the beneficiary and
// the targets of events that do not carry them.
func toOCSF(e *workflow.Event, requests Requests) (ocsfEvent, error) {
	var p ocsfPayload
	if len(e.Payload) > 0 {
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return ocsfEvent{}, fmt.Errorf("ocsf: payload: %w", err)
		}
	}
	c := classOf(e.Kind)

	var req workflow.Request
	var found bool
	if requests != nil && e.RequestID != "" && (e.Kind != workflow.KindSubmitted) {
		var err error
		if req, found, err = requests.Request(e.RequestID); err != nil {
			return ocsfEvent{}, fmt.Errorf("ocsf: request %s: %w", e.RequestID, err)
		}
	}
	beneficiary, breakglass := p.Beneficiary, p.BreakGlass
	if found {
		beneficiary, breakglass = req.Beneficiary, req.BreakGlass
	}

	var targets []workflow.Target
	email := p.Email
	switch {
	case e.Kind == workflow.KindSubmitted:
		targets = p.Targets
	case e.Kind == workflow.KindApproved:
		for _, g := range p.Grants {
			targets = append(targets, g.Target)
		}
	case e.GrantID != "" && found:
		if g, ok := req.Grant(e.GrantID); ok {
			targets = []workflow.Target{g.Target}
			if email == "" {
				email = g.Email
			}
		}
	case found:
		targets = req.Targets
	}

	severity := c.severity
	if breakglass && escalates[e.Kind] {
		severity = max(severity, ocsfSeverityMedium)
	}
	o := ocsfEvent{
		ClassUID:     c.class,
		ActivityID:   c.activity,
		ActivityName: c.activityName,
		TypeUID:      c.class*100 + c.activity,
		SeverityID:   severity,
		Severity:     ocsfSeverityNames[severity],
		Time:         e.Time.UnixMilli(),
		StatusID:     c.status,
		Status:       ocsfStatusNames[c.status],
		Message:      ocsfMessage(e, beneficiary, breakglass),
		Metadata: ocsfMetadata{
			UID:            e.ID.String(),
			CorrelationUID: e.RequestID,
			Version:        OCSFVersion,
			Product:        ocsfProduct{Name: "latch", VendorName: "latch"},
			LogName:        "audit",
		},
		Unmapped: store.NewExportedEvent(e),
	}
	o.ClassName = ocsfClassNames[c.class]
	o.TypeName = o.ClassName + ": " + c.activityName
	if c.status == ocsfStatusFailure {
		o.StatusDetail = firstNonEmpty(p.Reason, p.Error)
	}
	if c.class == ocsfClassBase {
		// Base Event has none of the IAM attributes: the actor and the
		// rest are in unmapped.
		o.CategoryName = ocsfCategoryNames[0]
		return o, nil
	}
	o.CategoryUID, o.CategoryName = ocsfCategoryIAM, ocsfCategoryNames[ocsfCategoryIAM]
	o.Actor = &ocsfActor{User: ocsfUser{UID: e.Actor}}
	if beneficiary != "" {
		o.User = &ocsfUser{UID: beneficiary, Email: email}
	}
	for _, t := range targets {
		id := t.Connector + "/" + t.Entitlement
		o.Privileges = append(o.Privileges, id)
		if c.class == ocsfClassAccess {
			o.Resources = append(o.Resources, ocsfResource{UID: id, Name: t.Entitlement, Type: t.Connector})
		}
	}
	return o, nil
}

// ocsfMessage says in a few words what happened.
func ocsfMessage(e *workflow.Event, beneficiary string, breakglass bool) string {
	var b strings.Builder
	if breakglass {
		b.WriteString("break-glass ")
	}
	b.WriteString(e.Kind)
	if e.GrantID != "" {
		fmt.Fprintf(&b, " grant %s", e.GrantID)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " request %s", e.RequestID)
	}
	if beneficiary != "" {
		fmt.Fprintf(&b, " for %s", beneficiary)
	}
	fmt.Fprintf(&b, " by %s", e.Actor)
	return b.String()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
