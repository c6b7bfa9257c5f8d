package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/warden-iot/warden/internal/apiv1"
)

// DPSInfo returns the ID scope of the caller's tenant and the provisioning
// host devices should use.
func (c *Client) DPSInfo(ctx context.Context) (apiv1.DPSInfo, error) {
	var out apiv1.DPSInfo
	err := c.Do(ctx, http.MethodGet, "/api/v1/dps", nil, nil, &out)
	return out, err
}

func groupPath(id string) string { return "/api/v1/dps/enrollment-groups/" + url.PathEscape(id) }

// CreateEnrollmentGroup adds an enrollment group; the answer holds its keys.
func (c *Client) CreateEnrollmentGroup(ctx context.Context, g apiv1.NewEnrollmentGroup) (apiv1.EnrollmentGroup, error) {
	var out apiv1.EnrollmentGroup
	err := c.Do(ctx, http.MethodPost, "/api/v1/dps/enrollment-groups", nil, g, &out)
	return out, err
}

// EnrollmentGroups lists the groups of the caller's tenant, without keys.
func (c *Client) EnrollmentGroups(ctx context.Context) ([]apiv1.EnrollmentGroup, error) {
	var out apiv1.EnrollmentGroupList
	err := c.Do(ctx, http.MethodGet, "/api/v1/dps/enrollment-groups", nil, nil, &out)
	return out.EnrollmentGroups, err
}

// EnrollmentGroup returns one group, with its keys.
func (c *Client) EnrollmentGroup(ctx context.Context, id string) (apiv1.EnrollmentGroup, error) {
	var out apiv1.EnrollmentGroup
	err := c.Do(ctx, http.MethodGet, groupPath(id), nil, nil, &out)
	return out, err
}

// UpdateEnrollmentGroup changes a group.
func (c *Client) UpdateEnrollmentGroup(ctx context.Context, id string, p apiv1.EnrollmentPatch) (apiv1.EnrollmentGroup, error) {
	var out apiv1.EnrollmentGroup
	err := c.Do(ctx, http.MethodPatch, groupPath(id), nil, p, &out)
	return out, err
}

// DeleteEnrollmentGroup removes a group (its devices stay).
func (c *Client) DeleteEnrollmentGroup(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, groupPath(id), nil, nil, nil)
}

func enrollmentPath(id string) string { return "/api/v1/dps/enrollments/" + url.PathEscape(id) }

// CreateEnrollment adds an individual enrollment; the answer holds its keys.
func (c *Client) CreateEnrollment(ctx context.Context, e apiv1.NewEnrollment) (apiv1.Enrollment, error) {
	var out apiv1.Enrollment
	err := c.Do(ctx, http.MethodPost, "/api/v1/dps/enrollments", nil, e, &out)
	return out, err
}

// Enrollments lists the individual enrollments of the caller's tenant,
// without keys.
func (c *Client) Enrollments(ctx context.Context) ([]apiv1.Enrollment, error) {
	var out apiv1.EnrollmentList
	err := c.Do(ctx, http.MethodGet, "/api/v1/dps/enrollments", nil, nil, &out)
	return out.Enrollments, err
}

// Enrollment returns one individual enrollment, with its keys.
func (c *Client) Enrollment(ctx context.Context, registrationID string) (apiv1.Enrollment, error) {
	var out apiv1.Enrollment
	err := c.Do(ctx, http.MethodGet, enrollmentPath(registrationID), nil, nil, &out)
	return out, err
}

// UpdateEnrollment changes an individual enrollment.
func (c *Client) UpdateEnrollment(ctx context.Context, registrationID string, p apiv1.EnrollmentPatch) (apiv1.Enrollment, error) {
	var out apiv1.Enrollment
	err := c.Do(ctx, http.MethodPatch, enrollmentPath(registrationID), nil, p, &out)
	return out, err
}

// DeleteEnrollment removes an individual enrollment (its device stays).
func (c *Client) DeleteEnrollment(ctx context.Context, registrationID string) error {
	return c.Do(ctx, http.MethodDelete, enrollmentPath(registrationID), nil, nil, nil)
}

// Registrations returns a page of registrations after the given id (""
// for the first) and the after of the next page ("" on the last). limit 0
// is the server's default.
func (c *Client) Registrations(ctx context.Context, after string, limit int) ([]apiv1.Registration, string, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out apiv1.RegistrationPage
	err := c.Do(ctx, http.MethodGet, "/api/v1/dps/registrations", q, nil, &out)
	return out.Registrations, out.Next, err
}

// Registration returns one registration record.
func (c *Client) Registration(ctx context.Context, registrationID string) (apiv1.Registration, error) {
	var out apiv1.Registration
	err := c.Do(ctx, http.MethodGet, "/api/v1/dps/registrations/"+url.PathEscape(registrationID), nil, nil, &out)
	return out, err
}

// DeleteRegistration removes a registration record (the device stays).
func (c *Client) DeleteRegistration(ctx context.Context, registrationID string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/dps/registrations/"+url.PathEscape(registrationID), nil, nil, nil)
}
